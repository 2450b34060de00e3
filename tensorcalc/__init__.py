"""tensorcalc: symbolic tensor calculus in index notation.

>>> import numpy as np, tensorcalc as tc
>>> tc.evaluate("y[i] = W[i,j] x[j]", W=np.eye(2), x=np.array([1.0, 2.0]))
array([1., 2.])
"""

from .api import compile, evaluate
from .backend.compact import Compact
from .bridges.to_jax import to_jax
from .bridges.to_torch import to_torch
from .derivatives import derive, grad, hessian, jacobian, jvp, vjp
from .errors import (
    DerivativeError,
    InputError,
    MemoryLimitError,
    ParseError,
    ProgramError,
    ShapeError,
    TensorCalcError,
    TensorCalcWarning,
)
from .limits import set_memory_limit
from .ops.functions import FUNCTIONS
from .ops.reductions import REDUCERS
from .program import Program
from .tools.explain import explain

__all__ = [
    "Compact",
    "DerivativeError",
    "FUNCTIONS",
    "REDUCERS",
    "InputError",
    "MemoryLimitError",
    "ParseError",
    "Program",
    "ProgramError",
    "ShapeError",
    "TensorCalcError",
    "TensorCalcWarning",
    "compile",
    "derive",
    "evaluate",
    "explain",
    "grad",
    "hessian",
    "set_memory_limit",
    "jacobian",
    "jvp",
    "to_jax",
    "to_torch",
    "vjp",
]
__version__ = "0.1.0"
