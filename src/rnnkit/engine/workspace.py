"""The engines' large scratch buffers, kept from one call to the next.

glibc's malloc takes blocks above 32 MB straight from the kernel (mmap) and hands them back on
free, so a buffer of that size that is allocated afresh every training step pays a page fault per
4 KB page on first touch, every step. At the large benchmark size (T=100, B=128, H=512) the
(N, 4H) gate buffer is 105 MB: writing it fresh took about 37 ms on this project's machine,
writing it again 4 ms. Smaller blocks fare only a little better: above 128 KB glibc maps them too,
or takes them from the top of its heap and gives that back (trims it) once enough is free there,
so whether they come back warm depends on everything else the process allocates. In a plain
training loop of the compiled LSTM at the small benchmark size (3.2 MB gate buffers, gradients set
to None between steps) that was 300-1,600 page faults a step and 10-15% of its time; kept, a few.
The engines take their gate-sized buffers (the gate gradients; in the compiled engine also the
input projection it keeps for backward) from ``empty``, which hands out views of kept buffers.

A kept buffer is handed out again only when nothing else holds its storage: autograd's saved
tensors, the caller's gradients and any view keep it busy, so a buffer is never shared. Buffers
under ``MIN_BYTES`` come from torch's allocator as usual; at most ``MAX_KEPT`` buffers are kept,
the least recently used dropped first; ``clear()`` drops them all.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch
from torch import Tensor

MIN_BYTES = 1 << 20  # 1 MB: keeps the small benchmark size's 3.2 MB gate buffers; smaller ones are torch's
MAX_KEPT = 4

_lock = threading.Lock()


@dataclass
class _Kept:
    base: Tensor  # 1-D, owned here
    idle_count: int  # the storage's use count with no view of it alive


_kept: list[_Kept] = []


def _use_count(tensor: Tensor) -> int:
    return torch._C._storage_Use_Count(tensor.untyped_storage()._cdata)


def available() -> bool:
    """Whether this torch lets us see a storage's use count (without it, ``empty`` is ``torch.empty``)."""
    return hasattr(torch._C, "_storage_Use_Count")


def keeps(shape: tuple[int, ...], like: Tensor) -> bool:
    """Whether ``empty(shape, like)`` hands out a kept buffer (else it is ``torch.empty``)."""
    return like.device.type == "cpu" and math.prod(shape) * like.element_size() >= MIN_BYTES and available()


def empty(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """An uninitialised tensor of ``shape`` with ``like``'s dtype and device; for a CPU buffer of at least
    ``MIN_BYTES``, a view of a kept buffer that nothing else uses.

    >>> a = empty((4096, 4096), torch.zeros(1))  # 64 MB: kept
    >>> address = a.data_ptr(); del a
    >>> empty((4096, 4096), torch.zeros(1)).data_ptr() == address
    True
    """
    if not keeps(shape, like):
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    numel = math.prod(shape)
    with _lock:
        for index, kept in enumerate(_kept):
            base = kept.base
            fits = base.dtype == like.dtype and numel <= base.numel() <= numel * 5 // 4
            if fits and _use_count(base) == kept.idle_count:
                _kept.append(_kept.pop(index))  # most recently used last
                return base[:numel].view(shape)
        base = torch.empty(numel, dtype=like.dtype)
        _kept.append(_Kept(base, _use_count(base)))
        if len(_kept) > MAX_KEPT:
            _kept.pop(0)  # a view of it still in use keeps its storage alive; we only forget it
        return base.view(shape)


def clear() -> None:
    """Drop every kept buffer (memory returns once their last views are gone)."""
    with _lock:
        _kept.clear()
