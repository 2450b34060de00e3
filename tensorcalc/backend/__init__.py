"""The back end: one array-free plan per program, and the two things done with it.

``plan`` decides what each statement computes (terms, contraction specs, ties, sizes);
``run`` binds a plan to arrays and runs it, ``export`` writes it as Python source.
Both take the numerical work from ``kernels``, so the two can never drift apart.
``arrays`` knows which library an array belongs to; ``compact`` is the value kept in
its delta structure.
"""
