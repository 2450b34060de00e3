"""The window products of ``test_torch_index_arithmetic.py`` and ``test_jax_convolution.py``:
those that are a convolution the library runs itself, and those that are not."""

from __future__ import annotations

import numpy as np


def arrays(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in shapes.items()}


# (program, shapes, sizes, which of torch's kernels runs it; JAX runs every one as
# lax.conv_general_dilated)
NATIVE = {
    "1-D valid": ("y[i] = x[i+a] w[a]", {"x": (9,), "w": (3,)}, None, "conv1d"),
    "1-D batch, channels": ("y[b,o,i] = x[b,c,i+a] W[o,c,a]",
                            {"x": (2, 3, 8), "W": (4, 3, 3)}, None, "conv1d"),
    "2-D valid": ("y[b,o,i,j] = x[b,c,i+a,j+e] W[o,c,a,e]",
                  {"x": (2, 3, 7, 6), "W": (4, 3, 3, 2)}, None, "conv2d"),
    "2-D same": ("y[b,o,i,j] = x[b,c,i+a-1,j+e-1] W[o,c,a,e]",
                 {"x": (2, 3, 6, 5), "W": (4, 3, 3, 3)}, {"i": 6, "j": 5}, "conv2d"),
    "2-D stride 2": ("y[b,o,i,j] = x[b,c,2*i+a,2*j+e] W[o,c,a,e]",
                     {"x": (2, 3, 9, 8), "W": (4, 3, 3, 3)}, None, "conv2d"),
    "2-D dilation 2": ("y[b,o,i,j] = x[b,c,i+2*a,j+2*e] W[o,c,a,e]",
                       {"x": (2, 3, 9, 8), "W": (4, 3, 3, 2)}, None, "conv2d"),
    "2-D stride, padding, commuted": ("y[o,i,j] = x[c,a+2*i-1,e+2*j-1] W[o,c,a,e]",
                                      {"x": (3, 8, 7), "W": (2, 3, 3, 3)},
                                      {"i": 4, "j": 4}, "conv2d"),
    # read backwards at stride 1, as many zeros before as after: an input gradient
    "1-D full (kernel flipped)": ("y[i] = x[i-a] w[a]", {"x": (6,), "w": (3,)}, {"i": 8},
                                  "convolution_backward"),
    "2-D flipped with a dilation": ("y[b,q,r,s] = G[b,k,r-2*l,s-m] W[k,q,l,m]",
                                    {"G": (2, 4, 5, 5), "W": (4, 3, 2, 3)},
                                    {"r": 7, "s": 7}, "convolution_backward"),
    "flipped, fewer zeros than the kernel's reach": (
        "y[b,q,r] = G[b,k,r-l+1] W[k,q,l]", {"G": (2, 4, 6), "W": (4, 3, 3)}, {"r": 6},
        "convolution_backward"),
    # read backwards otherwise: the kernel flipped, then conv1d
    "flipped, more zeros after than before": ("y[i] = x[i-a+1] w[a]",
                                              {"x": (6,), "w": (3,)}, {"i": 7}, "conv1d"),
    "flipped at stride 2": ("y[i] = x[2*i-a+2] w[a]", {"x": (9,), "w": (3,)}, {"i": 4},
                            "conv1d"),
    "reads past the end": ("y[i] = x[i+a+2] w[a]", {"x": (7,), "w": (3,)}, {"i": 6},
                           "conv1d"),
    "3-D": ("y[b,o,i,j,k] = x[b,c,i+a,j+e,k+f] W[o,c,a,e,f]",
            {"x": (2, 2, 5, 4, 6), "W": (3, 2, 2, 3, 2)}, None, "conv3d"),
    "axes in any order": ("y[i,o,b] = x[i+a,c,b] W[a,o,c]",
                          {"x": (8, 3, 2), "W": (3, 4, 3)}, None, "conv1d"),
    "two batch and two channel indices": ("y[b,d,o,i] = x[b,c,d,g,i+a] W[o,g,c,a]",
                                          {"x": (2, 3, 2, 2, 7), "W": (4, 2, 3, 3)}, None,
                                          "conv1d"),
    # a window larger than the result: torch's weight gradient of a convolution
    # a channel every factor keeps: a grouped (here depthwise) convolution
    "depthwise": ("y[c,i] = x[c,i+a] w[c,a]", {"x": (3, 8), "w": (3, 3)}, None, "conv1d"),
    "grouped, with batch, channels and outputs": (
        "y[b,g,o,i,j] = x[b,g,c,i+a,j+e] W[g,o,c,a,e]",
        {"x": (2, 3, 2, 6, 5), "W": (3, 4, 2, 3, 2)}, None, "conv2d"),
    "a depthwise weight gradient": ("g[c,a] = G[b,c,i] x[b,c,i+a]",
                                    {"G": (2, 3, 6), "x": (2, 3, 8)}, None,
                                    "convolution_backward"),
    "a grouped input gradient": ("y[b,g,q,r] = G[b,g,k,r-l] W[g,k,q,l]",
                                 {"G": (2, 3, 4, 6), "W": (3, 4, 2, 3)}, {"r": 8},
                                 "convolution_backward"),
    "a weight gradient's form": ("g[p,q,r,s] = G[k,p,l,m] x[k,q,l+r,m+s]",
                                 {"G": (2, 4, 5, 4), "x": (2, 3, 7, 6)}, None,
                                 "convolution_backward"),
    "a strided, padded convolution's weight gradient": (
        "g[p,q,r,s] = G[k,p,l,m] x[k,q,2*l+r-1,m+2*s-1]",
        {"G": (2, 4, 4, 5), "x": (2, 3, 7, 6)}, {"r": 3, "s": 2}, "convolution_backward"),
    "a 1-D weight gradient, axes in any order": (
        "g[r,p] = x[l+r,k] G[p,l,k]", {"G": (4, 6, 2), "x": (8, 2)}, None,
        "convolution_backward"),
    "a window larger than the result, read backwards": (
        "y[i] = x[i-a+5] w[a]", {"x": (8,), "w": (6,)}, {"i": 3}, "convolution_backward"),
}


# (program, shapes, sizes): terms that are not a convolution (the general product runs)
GENERAL = {
    "a window index kept with a channel (an unfold)": (
        "y[c,i,a] = x[c,i+a] w[c,a]", {"x": (3, 8), "w": (3, 3)}, None),
    "the spatial index summed": ("L = x[i+a] w[a]", {"x": (8,), "w": (3,)}, {"i": 6}),
    "a shift without a kernel": ("y[i] = x[i+1] w[i]", {"x": (8,), "w": (7,)}, None),
    "a window index kept": ("y[i,a] = x[i+a] w[a]", {"x": (8,), "w": (3,)}, None),
    "a negative stride": ("y[i] = x[4-i+a] w[a]", {"x": (8,), "w": (3,)}, {"i": 5}),
    "a channel summed within the window": ("y[i] = x[c,i+a] w[a]",
                                           {"x": (2, 8), "w": (3,)}, None),
}


