"""Derivatives on the IR: ``rules`` (one derivative per node kind), ``modes`` (forward
tangents and reverse adjoints over a program), ``simplify`` (the fixed point: constants
folded, terms collected), ``deltas`` (deltas substituted out), ``canonical`` (canonical
form and keys), ``ranges`` (the ranges of shifted indices), ``split`` (nested functions
named first), ``reuse`` and ``repeats`` (work shared and remembered)."""
