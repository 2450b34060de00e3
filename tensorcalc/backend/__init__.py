"""The back end: one array-free plan per program, and the two things done with it.

``plan`` decides what each statement computes (``operands`` holds that data: terms,
contraction specs, ties, sizes); ``run`` binds a plan to arrays and runs it (each
statement bound by ``binder``, its index arithmetic by ``indexing``), ``export`` writes
it as Python source. Both take the numerical work from ``ops.kernels`` and the index
arithmetic from ``windows``: the runner calls those functions and the exporter copies
their source, so the two can never drift apart. ``arrays`` binds the caller's arrays;
``libraries`` says what each array library can do; ``compact`` is the value kept in its
delta structure.
"""
