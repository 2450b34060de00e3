"""The operations: elementwise functions (``functions.FUNCTIONS``), reductions
(``reductions.REDUCERS``) and the numerical kernels both run and export use
(``kernels``, and ``special`` for erf, lgamma, digamma and polygamma). Below the
language, the calculus and the back end, which all read it.

The two registries are the only lists of the operations: one entry each holds the
kernel, the derivative, the LaTeX and the help text, and the grammar's reserved words,
the syntax-error hints and the CLI help are made from them.
"""
