# Copyright (c) monai-dml contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
The soft counts of the Dice semimetric losses straight from logits: the activation (softmax or sigmoid) fused into
the sums of :py:func:`monai_dml.losses.functional.overlap_statistics`.

A training step calls the loss on logits. Applying the activation first and summing afterwards keeps the
probability map for the activation's backward and allocates a second logits-sized buffer there. Here one autograd
function takes the logits and the target, walks them in cache-sized slabs (one image or a run of voxels, all
channels), writes the probabilities once into a buffer of the logits' shape and keeps the per-image, per-class
sums. Backward turns that buffer, run by run and in place, into the gradient of the logits. Nothing in backward
reads a value back to the host, so on a GPU the stream never stalls there.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from monai_dml.losses.functional import _accumulate_dtype

__all__ = ["fused_overlap_sums"]

# Slab sizes on the CPU, in values (images x channels x voxels), measured fastest on the 2-core benchmark machine
# (docs/benchmarks.md). The activation runs over a whole image when it has at most IMAGE_ELEMENTS values (a
# contiguous slab), else over runs of SLAB_ELEMENTS values; the elementwise statistics and the backward pass walk
# runs of RUN_ELEMENTS values, whose temporaries stay in cache. SLAB_ELEMENTS is a multiple of RUN_ELEMENTS.
IMAGE_ELEMENTS = 786432
SLAB_ELEMENTS = 393216
RUN_ELEMENTS = 196608
# on other devices (CUDA) the runs take all images at once; 4M values keep the run temporaries at 16 MiB (float32)
DEVICE_RUN_ELEMENTS = 1 << 22


def _graph_kept() -> bool:
    """Whether the running backward pass keeps the graph (``retain_graph=True``); True when torch cannot tell."""
    keep_graph = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    return True if keep_graph is None else bool(keep_graph())


def _batched(t: torch.Tensor) -> bool:
    """Whether ``t`` is walked with all images at once (devices other than the CPU)."""
    return t.device.type != "cpu"


def _run_length(t: torch.Tensor, elements: int) -> int:
    """Voxels per run of a ``(B, C, N)`` tensor: ``elements / C`` on the CPU (one image at a time), and
    ``DEVICE_RUN_ELEMENTS / (B C)`` on other devices (all images at once: few kernel launches)."""
    b, c, n = t.shape
    if _batched(t):
        return max(1, min(n, DEVICE_RUN_ELEMENTS // max(1, b * c)))
    return max(1, elements // max(1, c))


def _runs(t: torch.Tensor, run: int) -> list[tuple[int, int, int, int]]:
    """``(i0, i1, s0, s1)``: images ``[i0, i1)`` and voxels ``[s0, s1)``; one image at a time on the CPU."""
    b, _, n = t.shape
    images = [(0, b)] if _batched(t) else [(i, i + 1) for i in range(b)]
    return [(i0, i1, s, min(s + run, n)) for i0, i1 in images for s in range(0, n, run)]


def _activation_slabs(t: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """
    Slabs for the activation. On the CPU a whole image when it has at most ``IMAGE_ELEMENTS`` values (the slab is
    contiguous, where the softmax is fastest), else runs of about ``SLAB_ELEMENTS`` values; on other devices the
    whole tensor (its output is the kept buffer anyway; nothing to gain from cache-sized pieces).
    """
    b, c, n = t.shape
    if _batched(t) or c * n <= IMAGE_ELEMENTS:
        return _runs(t, max(n, 1))
    # a whole number of statistics runs, so that every run lies inside one slab
    return _runs(t, _run_length(t, RUN_ELEMENTS) * max(1, SLAB_ELEMENTS // RUN_ELEMENTS))


class _FusedOverlapSums(torch.autograd.Function):
    """
    ``(sum p^k, sum y^k, sum min(p, y), sum p y)`` per image and class, with ``p`` the softmax over the channels
    (``activation="softmax"``) or the sigmoid (``"sigmoid"``) of the logits, ``k`` = ``power``.

    ``logits`` is ``(B, C, N)``, ``target`` ``(B, C - first, N)`` (the channels from ``first`` on, as
    ``include_background=False`` keeps them), ``mask`` ``(B, 1, N)`` or None (``ignore_index``: ``p`` is multiplied by
    it, the target already is).

    Memory: when the logits need a gradient, forward writes the probabilities into one buffer of the logits' shape
    and backward turns that buffer, slab by slab and in place, into the gradient it returns, so the loss holds one
    logits-sized buffer from forward to backward and allocates nothing of that size in backward. The logits are
    not saved. A backward that keeps the graph (``retain_graph=True``, gradcheck) works on a copy of the buffer, so
    that the next one finds the probabilities again.

    The derivative of ``min(p, y) = (p + y - |p - y|) / 2`` with respect to ``p`` is ``(1 - sign(p - y)) / 2``: 1
    below the target, 0 above, 1/2 at a tie ``p == y`` (the probability-space function takes ``y`` there). After the
    activation the two rules differ only where ``p`` is exactly 1, and there by a factor of the other channels'
    probabilities (below 6e-8 in float32), because the softmax and sigmoid Jacobians vanish at 0 and 1.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        logits: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor | None,
        activation: str,
        first: int,
        power: int,
        need_min: bool,
        need_prod: bool,
        read_range: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        ctx.shape = logits.shape
        logits, target, mask = _flat(logits, target, mask)
        acc = _accumulate_dtype(logits)
        keep = ctx.needs_input_grad[0]
        probs = _Probabilities(logits, activation, keep)
        b, k, n = target.shape
        run = _run_length(logits, RUN_ELEMENTS)
        # partial sums per (run of voxels, image, class), reduced at the end: sum p^k, sum y^k, sum min, sum p y
        parts = torch.zeros((4, -(-n // run), b, k), dtype=acc, device=logits.device)
        lows: list[torch.Tensor] = []
        highs: list[torch.Tensor] = []
        tmp = None
        for i0, i1, a0, a1 in _activation_slabs(logits):
            p_slab = probs(i0, i1, a0, a1)[:, first:]
            y_slab = target[i0:i1, :, a0:a1]
            if read_range:  # amin + amax: aminmax copies a strided slab first
                lows.append(y_slab.amin())
                highs.append(y_slab.amax())
            if power == 1:  # the target's sum over the whole slab, in the slab's first run
                torch.sum(y_slab, dim=2, dtype=acc, out=parts[1, a0 // run, i0:i1])
            for s0 in range(a0, a1, run):  # the statistics in shorter runs: a small temporary, hot in cache
                s1 = min(s0 + run, a1)
                p = p_slab[..., s0 - a0 : s1 - a0]
                y = target[i0:i1, :, s0:s1]
                if mask is not None:
                    p = p * mask[i0:i1, :, s0:s1]
                if tmp is None:
                    tmp = torch.empty_like(p, dtype=torch.promote_types(p.dtype, y.dtype))
                t = tmp[..., : s1 - s0]
                out = parts[:, s0 // run, i0:i1]
                if power == 1:
                    torch.sum(p, dim=2, dtype=acc, out=out[0])
                else:
                    torch.sum(torch.mul(p, p, out=t), dim=2, dtype=acc, out=out[0])
                    torch.sum(torch.mul(y, y, out=t), dim=2, dtype=acc, out=out[1])
                if need_min:
                    torch.sum(torch.minimum(p, y, out=t), dim=2, dtype=acc, out=out[2])
                if need_prod:
                    torch.sum(torch.mul(p, y, out=t), dim=2, dtype=acc, out=out[3])
        sx, sy, smin, sprod = parts.sum(dim=1).unbind(0)
        value_range = (
            torch.stack([torch.stack(lows).amin(), torch.stack(highs).amax()]) if read_range else sx.new_zeros(2)
        )
        ctx.save_for_backward(target, mask)
        ctx.probs = probs.buffer
        ctx.p_dtype = probs.dtype
        ctx.activation, ctx.first, ctx.power, ctx.need_min, ctx.need_prod = (
            activation,
            first,
            power,
            need_min,
            need_prod,
        )
        ctx.set_materialize_grads(False)
        ctx.mark_non_differentiable(value_range)
        return sx, sy, smin, sprod, value_range

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: Any,
        g_sx: torch.Tensor | None,
        g_sy: torch.Tensor | None,
        g_min: torch.Tensor | None,
        g_prod: torch.Tensor | None,
        _g_range: Any,
    ) -> tuple[torch.Tensor | None, None, None, None, None, None, None, None, None]:
        none = (None,) * 8
        target, mask = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return (None, *none)
        if _graph_kept():  # retain_graph=True (or gradcheck): the next backward needs the probabilities again
            grad = ctx.probs.clone()
        else:  # the graph is freed after this pass: the probabilities become the gradient, in place
            grad, ctx.probs = ctx.probs, None
        first, power, dtype = ctx.first, ctx.power, grad.dtype
        # d/dp = const + slope * sign(p - y) [+ 2 g_sx p for power 2] [+ g_prod y], per (image, class): (B, K, 1)
        g_s, g_m, g_p = (
            None if g is None or not need else g.to(dtype).unsqueeze(-1)
            for g, need in ((g_sx, True), (g_min, ctx.need_min), (g_prod, ctx.need_prod))
        )
        const = torch.zeros(target.shape[:2] + (1,), dtype=dtype, device=grad.device)
        if g_s is not None and power == 1:
            const += g_s
        slope = None
        if g_m is not None:
            const += 0.5 * g_m
            slope = -0.5 * g_m
        tmp = ph_buffer = None
        run = _run_length(grad, RUN_ELEMENTS)
        for i0, i1, s0, s1 in _runs(grad, run):
            p_all = grad[i0:i1, :, s0:s1]  # the probabilities, overwritten with the gradient below
            p = p_all[:, first:]
            y = target[i0:i1, :, s0:s1]
            m = None if mask is None else mask[i0:i1, :, s0:s1].to(dtype)
            c_i, s_i = const[i0:i1], None if slope is None else slope[i0:i1]
            pm = p if m is None else p * m
            if tmp is None:
                tmp = torch.empty_like(p, dtype=torch.promote_types(dtype, y.dtype))
            h = tmp[..., : s1 - s0]
            if s_i is not None:
                torch.sub(pm, y, out=h).sign_().mul_(s_i).add_(c_i)
            else:
                h.copy_(c_i.expand_as(h))
            if g_s is not None and power == 2:
                h.addcmul_(pm, 2 * g_s[i0:i1])
            if g_p is not None:
                h.addcmul_(y, g_p[i0:i1])
            if m is not None:
                h.mul_(m)
            if ctx.activation == "sigmoid":
                p.addcmul_(p, p, value=-1).mul_(h)  # d sigmoid = p (1 - p)
                if first:
                    p_all[:, :first].zero_()
                continue
            # softmax: p_c (h_c - sum_k p_k h_k), with h = 0 on the channels before ``first``
            if ph_buffer is None:
                ph_buffer = torch.empty_like(h[:, 0])
            ph = torch.mul(p[:, 0], h[:, 0], out=ph_buffer[..., : s1 - s0])
            for ch in range(1, p.shape[1]):
                ph.addcmul_(p[:, ch], h[:, ch])
            ph = ph.unsqueeze(1)
            p.mul_(h.sub_(ph))
            if first:
                p_all[:, :first].mul_(ph).neg_()
        return (grad.view(ctx.shape), *none)


def _flat(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(B, C, N)`` views of ``(B, C, spatial...)`` tensors (copies where the layout needs them)."""
    b = logits.shape[0]
    return (
        logits.reshape(b, logits.shape[1], -1),
        target.reshape(b, target.shape[1], -1),
        None if mask is None else mask.reshape(b, 1, -1),
    )


class _Probabilities:
    """
    The activation of the logits slab by slab, into one kept buffer of the logits' shape (``keep``) or into a reused
    slab buffer. A softmax over a strided slab (a run of voxels of every channel) is several times slower than over
    a contiguous one on the CPU, so such a slab is first copied into a contiguous buffer.
    """

    def __init__(self, logits: torch.Tensor, activation: str, keep: bool) -> None:
        self.logits, self.activation = logits, activation
        # the activation's dtype (autocast may change it), probed on one voxel
        self.dtype = self._activate(logits[:1, :, :1]).dtype
        self.buffer = torch.empty(logits.shape, dtype=self.dtype, device=logits.device) if keep else None
        self._work: dict[str, torch.Tensor] = {}

    def _activate(self, z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        if self.activation == "sigmoid":
            return torch.sigmoid(z) if out is None else torch.sigmoid(z, out=out)
        return torch.softmax(z, dim=1) if out is None else torch.softmax(z, dim=1, out=out)

    def _scratch(self, name: str, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
        """A contiguous ``shape`` view of a reused flat buffer (the last, shorter slab gets a contiguous view too)."""
        size = math.prod(shape)
        flat = self._work.get(name)
        if flat is None or flat.numel() < size or flat.dtype != dtype:
            flat = self._work[name] = torch.empty(size, dtype=dtype, device=self.logits.device)
        return flat[:size].view(shape)

    def __call__(self, i0: int, i1: int, s0: int, s1: int) -> torch.Tensor:
        z = self.logits[i0:i1, :, s0:s1]
        out = None if self.buffer is None else self.buffer[i0:i1, :, s0:s1]
        shape = tuple(z.shape)
        if self.activation == "sigmoid" or (z.is_contiguous() and (out is None or out.is_contiguous())):
            if z.dtype != self.dtype:
                z = z.to(self.dtype)
            return self._activate(z, out=self._scratch("p", self.dtype, shape) if out is None else out)
        zc = self._scratch("z", self.dtype, shape).copy_(z)
        p = self._activate(zc, out=self._scratch("p", self.dtype, shape))
        if out is not None:
            out.copy_(p)
        return p


def fused_overlap_sums(
    logits: torch.Tensor,
    target: torch.Tensor,
    activation: str,
    first: int = 0,
    power: int = 1,
    need_min: bool = True,
    need_prod: bool = False,
    mask: torch.Tensor | None = None,
    read_range: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Soft counts of the activated logits against the target, per image and class; when the logits need a gradient,
    the probabilities are kept in the one buffer that backward turns into that gradient.

    Args:
        logits: ``(B, C, spatial...)``.
        target: probabilities ``(B, C - first, spatial...)``, not differentiated.
        activation: ``"softmax"`` (over the channels) or ``"sigmoid"``.
        first: channels before ``first`` are activated (softmax) but not counted (``include_background=False``).
        power: 1 (``sum p``, ``sum y``) or 2 (``sum p^2``, ``sum y^2``, MONAI's ``squared_pred``).
        need_min: compute ``sum min(p, y)`` (else zeros).
        need_prod: compute ``sum p y`` (else zeros).
        mask: ``(B, 1, spatial...)`` voxels to count (``ignore_index``), or None.
        read_range: read the target's minimum and maximum on the way (else the range returned is zeros).

    Returns:
        ``(sum p^k, sum y^k, sum min(p, y), sum p y)``, each ``(B, C - first)`` in float32 for half precision logits,
        and ``(min, max)`` of the target as a tensor of 2 values (for a combined check by the caller).

    Raises:
        ValueError: for an unknown ``activation``, or a ``target``/``mask`` whose shape does not match the logits'.
    """
    if activation not in ("softmax", "sigmoid"):
        raise ValueError(f'activation must be "softmax" or "sigmoid", got {activation!r}.')
    expected = (logits.shape[0], logits.shape[1] - first, *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target must have shape {expected} (the logits' from channel first={first} on), got {tuple(target.shape)}."
        )
    if mask is not None and tuple(mask.shape) != (logits.shape[0], 1, *logits.shape[2:]):
        raise ValueError(f"mask must have shape {(logits.shape[0], 1, *logits.shape[2:])}, got {tuple(mask.shape)}.")
    m = None if mask is None else mask.to(logits.dtype)
    return _FusedOverlapSums.apply(  # type: ignore[no-any-return]
        logits, target, m, activation, first, power, need_min, need_prod, read_range
    )
