"""Derivatives on the IR: ``rules`` (one derivative per node kind), ``modes`` (forward
tangents and reverse adjoints over a program), ``simplify`` (deltas out, terms collected,
canonical form), ``ranges`` (the ranges of shifted indices), ``split`` (nested
functions named first), ``reuse`` and ``repeats`` (work shared and remembered)."""
