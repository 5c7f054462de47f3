"""The engines' matrix products, on the faster of torch's two CPU kernels for each.

torch's ``mm``/``addmm`` run float32 through MKL's sgemm. torch also carries oneDNN, whose JIT
matmul (``torch.ops.mkldnn._linear_pointwise``, the kernel torch's Inductor uses for CPU linear
layers) was 10-35% faster on this project's machine (AMD EPYC, AVX-512, 2 threads) for the products
of the input and the weights: the input projection ``x @ W_ih^T``, each step's ``h @ W_hh^T`` and
its backward ``grad_z @ W_hh``, and ``dL/dx``. It was slower for the weight gradients
``grad^T @ x`` (a long reduction over all T*B rows: those stay on ``mm``) and for products under
about 4M multiply-adds, where its call costs about 15 µs more.

``matmul`` picks oneDNN for a float32 CPU product of at least ``ONEDNN_MIN_MACS`` multiply-adds
outside autograd, and ``torch.addmm``/``mm`` otherwise. ``RNNKIT_GEMM=blas`` (or ``onednn``) in the
environment forces one kernel; ``kernel()`` says which one runs. Both give the same product to
float32 rounding (about 1e-6 relative), not bit for bit.

oneDNN reads a plain weight by reordering it into its blocked layout on every call. A time loop
multiplies by the same ``W_hh`` at every step, so the fused engine reorders it once per call
(``prepack``) and hands ``matmul`` the :class:`Prepacked` pair.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

import torch
from torch import Tensor

ONEDNN_MIN_MACS = 1 << 22  # 4M multiply-adds: the crossover measured for (M, K) @ (K, N) on 2 threads


@functools.cache
def _forced() -> str:
    """``RNNKIT_GEMM`` as set at the first product (``"blas"``, ``"onednn"`` or ``""``), read once: not per step."""
    return os.environ.get("RNNKIT_GEMM", "").lower()


@functools.cache
def onednn_available() -> bool:
    """Whether this torch has oneDNN's matmul op and it agrees with ``mm`` on a small product."""
    if _forced() == "blas":
        return False
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        a, b = torch.randn(3, 5), torch.randn(4, 5)
        got = torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [None], "")
        return bool(torch.allclose(got, a @ b.t(), rtol=1e-5, atol=1e-5))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def kernel() -> str:
    """``"onednn"`` or ``"blas"``: what runs the float32 products big enough to choose."""
    return "onednn" if onednn_available() else "blas"


def _use_onednn(a: Tensor, b: Tensor, rows: int | None = None) -> bool:
    """Whether ``a @ b`` runs on oneDNN; ``rows`` in place of ``a.shape[0]`` when given."""
    if a.dtype != torch.float32 or b.dtype != torch.float32 or a.device.type != "cpu" or b.device.type != "cpu":
        return False
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return False  # oneDNN's op has no autograd formula: the reference engine keeps mm
    rows = a.shape[0] if rows is None else rows
    return rows * b.shape[0] * b.shape[1] >= onednn_min_macs() and onednn_available()


class Prepacked(NamedTuple):
    """The right-hand side ``b`` (K, N) of many products ``a @ b``, with oneDNN's copy of it in the
    blocked layout its matmul kernel reads. oneDNN reorders a plain ``b`` on every call; the fused
    engine's time loops multiply by the same ``W_hh`` at every step, so it reorders it once (:func:`prepack`)."""

    plain: Tensor  # (K, N)
    onednn: Tensor  # b^T reordered for oneDNN (an opaque mkldnn tensor)


def prepack(b: Tensor, rows: int) -> Tensor | Prepacked:
    """``b`` (K, N) ready for repeated products ``a @ b`` with ``a`` of about ``rows`` rows: a
    :class:`Prepacked` where :func:`matmul` runs such a product on oneDNN, else ``b`` itself.
    ``matmul`` takes either. At the medium benchmark size (64 rows, 256 x 1024) the per-step product
    took 175-200 µs with the reordered weight against 200-225 µs without.

    >>> a, b = torch.randn(64, 256), torch.randn(256, 1024)
    >>> torch.allclose(matmul(a, prepack(b, 64)), a @ b, atol=1e-4)
    True
    """
    if torch.compiler.is_compiling():
        return b  # an export or torch.compile trace: a reorder would enter its graph (ONNX has no such op)
    # would (rows, K) @ b run on oneDNN? b stands in for the left side's dtype, device and autograd
    if not _use_onednn(b, b, rows) or not hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        return b
    try:
        return Prepacked(b, torch.ops.mkldnn._reorder_linear_weight(b.t().contiguous(), rows))
    except (RuntimeError, NotImplementedError):
        return b


def onednn_min_macs() -> int:
    """The smallest product oneDNN runs: ``ONEDNN_MIN_MACS``, or 0 when ``RNNKIT_GEMM=onednn``."""
    return 0 if _forced() == "onednn" else ONEDNN_MIN_MACS


def matmul(a: Tensor, b: Tensor | Prepacked, add: Tensor | None = None, out: Tensor | None = None) -> Tensor:
    """``add + a @ b`` for a (M, K), b (K, N) (or b from :func:`prepack`); ``add`` None, a bias (N,) or a
    matrix (M, N).

    With ``out`` (M, N), the product is written there by ``torch.mm``/``addmm`` (oneDNN's op has no
    ``out``): a warm kept buffer (``rnnkit.engine.workspace``) beats a fresh one on either kernel.

    >>> a, b = torch.randn(64, 256), torch.randn(256, 1024)
    >>> torch.allclose(matmul(a, b), a @ b, atol=1e-4)
    True
    """
    if isinstance(b, Prepacked):
        b, weight = b.plain, b.onednn
    else:
        weight = b.t()  # (N, K): oneDNN computes a @ weight^T and reads weight's strides as they are
    if out is not None:
        return torch.mm(a, b, out=out) if add is None else torch.addmm(add, a, b, out=out)
    if not _use_onednn(a, b):
        return a @ b if add is None else torch.addmm(add, a, b)
    if add is None or add.dim() == 1:
        return torch.ops.mkldnn._linear_pointwise(a, weight, add, "none", [None], "")
    return torch.ops.mkldnn._linear_pointwise.binary(a, add, weight, None, "add")
