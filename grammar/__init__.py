"""The tensorcalc grammar, shipped as package data (``tensorcalc.grammar``)."""
