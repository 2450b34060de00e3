"""The workloads, in the order of the table. To add one, write a module here that
defines ``WORKLOADS`` (a tuple of :class:`benchmarks.spec.Workload`) and list it below."""

from __future__ import annotations

from benchmarks.spec import Workload
from benchmarks.workloads import (
    chain,
    conv,
    elman,
    embedding,
    first_call,
    gaussian_nll,
    gaussian_process,
    jax_jit,
    language,
    least_squares_hessian,
    logistic_hessian,
    lstm,
    mlp_gradient,
    sigmoid_jacobian,
    small_gradient,
    softmax_xent,
    torch_step,
)

ALL: tuple[Workload, ...] = (
    *logistic_hessian.WORKLOADS,
    *least_squares_hessian.WORKLOADS,
    *mlp_gradient.WORKLOADS,
    *sigmoid_jacobian.WORKLOADS,
    *small_gradient.WORKLOADS,
    *first_call.WORKLOADS,
    *chain.WORKLOADS,
    *gaussian_nll.WORKLOADS,
    *softmax_xent.WORKLOADS,
    *language.INTEGER_LABELS,
    *jax_jit.WORKLOADS,
    *torch_step.WORKLOADS,
    *conv.WORKLOADS,
    *embedding.WORKLOADS,
    *language.TRANSFORMER,
    *gaussian_process.WORKLOADS,
    *lstm.WORKLOADS,
    *elman.WORKLOADS,
)


def by_key(key: str) -> Workload:
    for w in ALL:
        if w.key == key:
            return w
    raise KeyError(key)
