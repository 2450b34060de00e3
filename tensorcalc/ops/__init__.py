"""The operations: elementwise functions (``functions.FUNCTIONS``), reductions
(``reductions.REDUCERS``) and the numerical kernels both run and export use
(``kernels``). Below the language, the calculus and the back end, which all read it.
"""
