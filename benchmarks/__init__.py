"""Benchmarks of tensorcalc against a hand-written NumPy formula, jax.jit and torch.func.

Run from the repository root with ``python -m benchmarks`` (or ``python benchmarks/run.py``).
The package is laid out as:

- ``benchmarks.workloads``: one module per workload, each a :class:`~benchmarks.spec.Workload`
  (setup, tensorcalc program, NumPy reference, peers, goal) given as data;
- ``benchmarks.spec``: the :class:`~benchmarks.spec.Workload` and
  :class:`~benchmarks.spec.Goal` types and the standard measurement;
- ``benchmarks.peers``: jax and torch, imported lazily;
- ``benchmarks.harness``: timing, checks, the machine, noise detection, the table;
- ``benchmarks.cli``: the command line.

Nothing here imports NumPy at package import time: ``--threads`` must set the thread
environment variables first (see ``benchmarks.threads``).
"""
