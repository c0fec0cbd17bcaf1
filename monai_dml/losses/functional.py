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
"""Pure tensor functions behind the Dice semimetric losses.

Everything here works on probabilities (no activation, no one-hot conversion): the ``nn.Module`` wrappers in
:py:mod:`monai_dml.losses.dice_semimetric` handle those and then call :py:func:`dice_semimetric_loss`.

Notation follows Wang et al. (2023): for one summation domain ``phi`` with prediction ``x`` and target ``y``,

.. math::

    \\mathrm{TP} = \\sum \\min(x, y) \\ (\\text{DML1}) \\quad\\text{or}\\quad \\sum x y \\ (\\text{DML2, SDL}),\\qquad
    \\mathrm{FP} = \\sum x - \\sum \\min(x, y),\\qquad \\mathrm{FN} = \\sum y - \\sum \\min(x, y)

(SDL uses ``FP = sum(x) - sum(xy)``, ``FN = sum(y) - sum(xy)``), and the loss is the Tversky form

.. math::

    \\ell = \\left(1 - \\frac{2\\,\\mathrm{TP} + \\epsilon_{nr}}
    {2(\\mathrm{TP} + \\alpha\\,\\mathrm{FP} + \\beta\\,\\mathrm{FN}) + \\epsilon_{dr}}\\right)^{\\gamma}.

With ``alpha = beta = 0.5`` this is ``1 - (2 TP + eps) / (|x| + |y| - |x - y| + |x - y| + eps)``, i.e.
DML1 ``= 1 - (|x + y| - |x - y|) / |x + y|`` and DML2 ``= 1 - 2|xy| / (2|xy| + |x - y|)`` (Eq. 4 of the paper),
and with ``alpha = beta = 1`` the Jaccard metric losses JML1/JML2. The smoothing terms enter exactly as in
``monai.losses.DiceLoss``, so that hard labels reproduce MONAI to rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.utils import StrEnum

from monai_dml.utils.checks import check_soft_target
from monai_dml.utils.options import look_up_option

__all__ = [
    "DMLVariant",
    "DiceDomain",
    "ClassAverage",
    "overlap_statistics",
    "sums_needed",
    "statistics_from_sums",
    "check_finite_statistics",
    "loss_from_statistics",
    "pool_statistics",
    "tversky_from_statistics",
    "dice_semimetric_loss",
    "all_reduce_sum",
]


class DMLVariant(StrEnum):
    """
    How the soft intersection of prediction and target is relaxed.

    - ``DML1``: ``TP = sum(min(x, y))``, equivalently ``(|x| + |y| - |x - y|) / 2`` (Wang et al. 2023, DML1/JML1).
    - ``DML2``: ``TP = sum(x * y)`` with ``FP + FN = |x - y|`` (DML2/JML2).
    - ``SDL``: the classic soft Dice loss, ``TP = sum(x * y)``, ``FP = |x| - TP``, ``FN = |y| - TP``; it is minimised
      at the vertices {0, 1}, not at a soft label.
    """

    DML1 = "dml1"
    DML2 = "dml2"
    SDL = "sdl"


class DiceDomain(StrEnum):
    """
    The summation domain Phi of Tilborghs et al. (2022): the axes that one Dice score sums over.

    - ``I``: per image and class (MONAI's default), one score per ``(b, c)``.
    - ``BI``: per class over the whole batch (MONAI's ``batch=True``), one score per ``c``.
    - ``CI``: per image over all classes, one score per ``b``.
    - ``BCI``: over everything, one score.
    """

    I = "I"  # noqa: E741
    BI = "BI"
    CI = "CI"
    BCI = "BCI"


class ClassAverage(StrEnum):
    """
    Which domain elements enter the average.

    - ``ALL``: every element (MONAI's behaviour).
    - ``PRESENT``: only elements whose target is present, i.e. has a voxel above ``present_threshold``
      (the reference implementation's "PRESENT" mode).
    """

    ALL = "all"
    PRESENT = "present"


def _accumulate_dtype(t: torch.Tensor) -> torch.dtype:
    # half precision sums over a volume overflow and lose precision: accumulate in float32
    return torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else t.dtype


class _OverlapSums(torch.autograd.Function):
    """
    Sums over ``dims`` of ``x**p``, ``y**p``, ``min(x, y)`` and ``x * y`` for ``p`` in {1, 2}.

    Only ``x`` and ``y`` are saved for backward (they are alive anyway as the activation output and the target);
    ``x - y``, ``|x - y|`` and ``min(x, y)`` are never kept: their derivatives are recomputed from ``x`` and ``y``.
    At ties ``x == y`` the derivative of ``min(x, y)`` is taken as ``y`` with respect to ``x`` and ``1 - y`` with
    respect to ``y`` (a valid subgradient for ``y`` in [0, 1]); this makes DML gradients identical to the soft Dice
    gradients on hard labels even where a probability is exactly 0 or 1.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, y: torch.Tensor, dims: tuple[int, ...], power: int, need_min: bool, need_prod: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        acc = _accumulate_dtype(x)
        if power == 1:
            sx = torch.sum(x, dim=dims, dtype=acc)
            sy = torch.sum(y, dim=dims, dtype=acc)
        else:
            sx = _sum_of_products(x, x, dims, acc)
            sy = _sum_of_products(y, y, dims, acc)
        zero = torch.zeros_like(sx)
        smin = torch.sum(torch.minimum(x, y), dim=dims, dtype=acc) if need_min else zero
        sprod = _sum_of_products(x, y, dims, acc) if need_prod else zero
        ctx.save_for_backward(x, y)
        ctx.dims, ctx.power, ctx.need_min, ctx.need_prod = dims, power, need_min, need_prod
        ctx.set_materialize_grads(False)
        return sx, sy, smin, sprod

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, g_sx: torch.Tensor | None, g_sy: torch.Tensor | None, g_min: torch.Tensor | None, g_prod: Any
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None, None, None]:
        x, y = ctx.saved_tensors
        shape = _keepdim_shape(x.shape, ctx.dims)
        g_min = g_min if ctx.need_min else None
        g_prod = g_prod if ctx.need_prod else None
        g_sx, g_sy, g_min, g_prod = (
            None if g is None else g.to(x.dtype).reshape(shape) for g in (g_sx, g_sy, g_min, g_prod)
        )
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_x = _partial(x, y, g_sx, g_min, g_prod, ctx.power, tie_value=y)
        if ctx.needs_input_grad[1]:
            grad_y = _partial(y, x, g_sy, g_min, g_prod, ctx.power, tie_value=1 - y)
        return grad_x, grad_y, None, None, None, None


def _sum_of_products(a: torch.Tensor, b: torch.Tensor, dims: tuple[int, ...], acc: torch.dtype) -> torch.Tensor:
    """``sum(a * b)`` over the trailing ``dims``; a batched dot product (no temporary) for full precision input."""
    lead = a.shape[: a.ndim - len(dims)]
    if a.dtype == acc and b.dtype == acc and dims == tuple(range(len(lead), a.ndim)):
        n = int(np.prod(lead)) if lead else 1
        out = torch.bmm(a.reshape(n, 1, -1), b.reshape(n, -1, 1))
        return out.reshape(lead)
    return torch.sum(a * b, dim=dims, dtype=acc)


def _keepdim_shape(shape: torch.Size, dims: tuple[int, ...]) -> list[int]:
    return [1 if i in dims else s for i, s in enumerate(shape)]


def _partial(
    a: torch.Tensor,
    b: torch.Tensor,
    g_s: torch.Tensor | None,
    g_min: torch.Tensor | None,
    g_prod: torch.Tensor | None,
    power: int,
    tie_value: torch.Tensor,
) -> torch.Tensor:
    """Gradient of ``g_s * sum(a**p) + g_min * sum(min(a, b)) + g_prod * sum(a * b)`` with respect to ``a``.

    Written as a few in-place passes over one output buffer: the derivative of ``min(a, b)`` is ``1[a < b]``, and
    ``tie_value`` where ``a == b``.
    """
    if g_min is not None:
        grad = torch.lt(a, b, out=torch.empty_like(a))
        ties = torch.eq(a, b)
        if bool(ties.any()):
            grad = torch.where(ties, tie_value.to(grad), grad)
        grad.mul_(g_min)
        if g_s is not None and power == 1:
            grad.add_(g_s)
    elif g_s is not None and power == 1:
        grad = g_s.expand_as(a).clone(memory_format=torch.contiguous_format)
    else:
        grad = torch.zeros_like(a)
    if g_s is not None and power == 2:
        grad.addcmul_(a, 2 * g_s)
    if g_prod is not None:
        grad.addcmul_(b, g_prod)
    return grad


def overlap_statistics(
    input: torch.Tensor, target: torch.Tensor, variant: DMLVariant | str = DMLVariant.DML1, squared: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Soft true positives, false positives and false negatives per image and class.

    Args:
        input: probabilities, shape ``(B, C, spatial...)``.
        target: probabilities in [0, 1], same shape as ``input``.
        variant: {``"dml1"``, ``"dml2"``, ``"sdl"``}, see :py:class:`DMLVariant`. Defaults to ``"dml1"``.
        squared: use the L2 relaxation (``|x|^2``, ``|y|^2``, ``TP = sum(xy)``), MONAI's ``squared_pred``. It is
            compatible with soft labels for every variant, so ``variant`` is then irrelevant.

    Returns:
        ``(tp, fp, fn)``, each of shape ``(B, C)``, in float32 for half precision input.

    Raises:
        ValueError: when ``input`` and ``target`` shapes differ or have fewer than 3 dimensions.
    """
    if input.shape != target.shape:
        raise ValueError(
            f"input and target must have the same shape, got input {input.shape} and target {target.shape}."
        )
    if input.ndim < 3:
        raise ValueError(f"input must have shape (B, C, spatial...) with at least one spatial axis, got {input.shape}.")
    variant = look_up_option(variant, DMLVariant, "variant")
    dims = tuple(range(2, input.ndim))
    power, need_min, need_prod = sums_needed(variant, squared)
    sx, sy, smin, sprod = _OverlapSums.apply(input, target, dims, power, need_min, need_prod)  # type: ignore[no-untyped-call]
    return statistics_from_sums(sx, sy, smin, sprod, variant=variant, squared=squared)


def sums_needed(variant: DMLVariant | str, squared: bool = False) -> tuple[int, bool, bool]:
    """
    Which soft counts a variant is built from: ``(power, need_min, need_prod)``, i.e. ``sum x^power`` and
    ``sum y^power`` always, ``sum min(x, y)`` if ``need_min``, ``sum x y`` if ``need_prod``.

    Args:
        variant: {``"dml1"``, ``"dml2"``, ``"sdl"``}.
        squared: the L2 relaxation (power 2 and ``sum x y``, whatever the variant).

    Returns:
        ``(power, need_min, need_prod)``.

    Raises:
        ValueError: for an unknown ``variant``.
    """
    variant = look_up_option(variant, DMLVariant, "variant")
    if squared:
        return 2, False, True
    return 1, variant != DMLVariant.SDL, variant != DMLVariant.DML1


def statistics_from_sums(
    sx: torch.Tensor,
    sy: torch.Tensor,
    smin: torch.Tensor,
    sprod: torch.Tensor,
    variant: DMLVariant | str = DMLVariant.DML1,
    squared: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    ``(tp, fp, fn)`` of a variant from the soft counts of :py:func:`sums_needed` (unused counts are ignored).

    Args:
        sx: ``sum x^p`` per image and class, ``(B, C)``.
        sy: ``sum y^p``, ``(B, C)``.
        smin: ``sum min(x, y)``, ``(B, C)``.
        sprod: ``sum x y``, ``(B, C)``.
        variant: {``"dml1"``, ``"dml2"``, ``"sdl"``}.
        squared: the L2 relaxation: ``tp = sum x y``, ``fp = sum x^2 - tp``, ``fn = sum y^2 - tp``.

    Returns:
        ``(tp, fp, fn)``, each ``(B, C)``.

    Raises:
        ValueError: for an unknown ``variant``.
    """
    variant = look_up_option(variant, DMLVariant, "variant")
    if squared or variant == DMLVariant.SDL:
        return sprod, sx - sprod, sy - sprod
    if variant == DMLVariant.DML1:
        return smin, sx - smin, sy - smin
    return sprod, sx - smin, sy - smin


def pool_statistics(stats: torch.Tensor, phi: DiceDomain | str) -> torch.Tensor:
    """
    Pool per-image, per-class sums ``(B, C)`` over the axes that the domain Phi joins.

    Soft counts are sums over voxels, so pooling them is exact: ``"BI"`` sums over the batch, ``"CI"`` over the
    classes, ``"BCI"`` over both.

    Args:
        stats: per-image, per-class sums, shape ``(B, C)``.
        phi: the domain {``"I"``, ``"BI"``, ``"CI"``, ``"BCI"``}.

    Returns:
        ``(B or 1, C or 1)``: both axes kept, with size 1 where pooled.

    Raises:
        ValueError: for an unknown ``phi``.
    """
    phi = look_up_option(phi, DiceDomain, "phi")
    if phi in (DiceDomain.BI, DiceDomain.BCI):
        stats = stats.sum(dim=0, keepdim=True)
    if phi in (DiceDomain.CI, DiceDomain.BCI):
        stats = stats.sum(dim=1, keepdim=True)
    return stats


def tversky_from_statistics(
    tp: torch.Tensor,
    fp: torch.Tensor,
    fn: torch.Tensor,
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth_nr: torch.Tensor | float = 1e-5,
    smooth_dr: torch.Tensor | float = 1e-5,
) -> torch.Tensor:
    """
    ``1 - (2 tp + smooth_nr) / (2 (tp + alpha fp + beta fn) + smooth_dr)`` elementwise.

    Where the denominator is 0 (empty prediction and target with ``smooth_dr = 0``) prediction and target agree
    perfectly, and the loss is defined as 0 with a zero gradient instead of ``0/0 = NaN``.

    Args:
        tp: soft true positives, any shape.
        fp: soft false positives, broadcastable to ``tp``.
        fn: soft false negatives, broadcastable to ``tp``.
        alpha: false-positive weight (0.5 Dice, 1 Jaccard). Defaults to 0.5.
        beta: false-negative weight (0.5 Dice, 1 Jaccard). Defaults to 0.5.
        smooth_nr: numerator smoothing, a float or a tensor broadcastable to ``tp``. Defaults to 1e-5.
        smooth_dr: denominator smoothing, like ``smooth_nr``. Defaults to 1e-5.

    Returns:
        the loss, elementwise, of the broadcast shape.
    """
    numerator = 2 * tp + smooth_nr
    denominator = 2 * (tp + alpha * fp + beta * fn) + smooth_dr
    defined = denominator != 0
    ratio = numerator / torch.where(defined, denominator, torch.ones_like(denominator))
    return 1 - torch.where(defined, ratio, torch.ones_like(ratio))


def dice_semimetric_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    variant: DMLVariant | str = DMLVariant.DML1,
    phi: DiceDomain | str = DiceDomain.I,
    alpha: float = 0.5,
    beta: float = 0.5,
    gamma: float = 1.0,
    smooth_nr: torch.Tensor | float = 1e-5,
    smooth_dr: torch.Tensor | float = 1e-5,
    weight: torch.Tensor | None = None,
    squared: bool = False,
    sync_batch: bool = False,
    validate: bool = True,
) -> torch.Tensor:
    """
    Dice semimetric loss per summation domain, before any reduction.

    Wang, Z. et. al. (2023) Dice Semimetric Losses: Optimizing the Dice Score with Soft Labels. MICCAI 2023.
    Tilborghs, S. et. al. (2022) The Dice loss in the context of missing or empty labels: introducing Phi and
    epsilon. MICCAI 2022.

    Args:
        input: probabilities, shape ``(B, C, spatial...)``.
        target: probabilities in [0, 1], same shape.
        variant: {``"dml1"``, ``"dml2"``, ``"sdl"``}. Defaults to ``"dml1"``.
        phi: summation domain {``"I"``, ``"BI"``, ``"CI"``, ``"BCI"``}. Defaults to ``"I"``.
        alpha: weight of the false positives (0.5 Dice, 1 Jaccard). Defaults to 0.5.
        beta: weight of the false negatives (0.5 Dice, 1 Jaccard). Defaults to 0.5.
        gamma: focal exponent (>= 1), the loss of each domain is raised to it. Defaults to 1.
        smooth_nr: numerator smoothing: a float or a tensor of shape ``(C,)`` (one epsilon per class).
        smooth_dr: denominator smoothing, like ``smooth_nr``.
        weight: class weights of shape ``(C,)`` or None. For ``"I"``/``"BI"`` each class's loss is multiplied by
            its weight (as MONAI does); for ``"CI"``/``"BCI"`` the weights scale each class's soft counts inside
            the pooled sums (a generalised Dice), and per-class smoothing terms are summed over the classes.
        squared: use the L2 relaxation (MONAI's ``squared_pred``).
        sync_batch: under ``torch.distributed``, make the batch-pooled domains ``"BI"``/``"BCI"`` pool over the
            global batch of all ranks: the soft counts are summed across ranks with a differentiable all-reduce,
            so with DDP the loss and the parameter gradients equal those of one process with the whole batch.
            Ignored for ``"I"``/``"CI"`` (nothing crosses images) and when no process group is initialised.
        validate: raise on NaN/Inf in ``input`` or ``target`` (one device-to-host read). Defaults to True.

    Returns:
        Loss of shape ``(B or 1, C or 1)``: one value per domain element, ``B`` and ``C`` collapsed to 1 where
        ``phi`` pools them.

    Raises:
        ValueError: when ``input`` or ``target`` holds NaN or Inf (detected on the sums, at no extra pass).
    """
    tp, fp, fn = overlap_statistics(input, target, variant, squared)
    if validate:
        check_finite_statistics(tp, fp, fn, input, target)
    return loss_from_statistics(tp, fp, fn, phi, alpha, beta, gamma, smooth_nr, smooth_dr, weight, sync_batch)


def check_finite_statistics(
    tp: torch.Tensor,
    fp: torch.Tensor,
    fn: torch.Tensor,
    input: torch.Tensor,
    target: torch.Tensor,
    target_range: torch.Tensor | None = None,
    hint: str = "",
) -> None:
    """
    Raise when the prediction or the target holds NaN/Inf, found on the soft counts at no extra pass, and (with
    ``target_range``) when the target leaves [0, 1]: one device-to-host read for all checks.

    ``tp + fp`` is ``sum x^p`` and ``tp + fn`` is ``sum y^p`` for every variant: non-finite iff a voxel is NaN/Inf.

    Args:
        tp, fp, fn: the statistics ``(B, C)``.
        input: the prediction (named in the message by its shape and dtype).
        target: the target.
        target_range: ``(min, max)`` of the target, or None when the target was checked already.
        hint: appended to the range error of the target.

    Raises:
        ValueError: naming ``input`` or ``target``.
    """
    flags = [torch.isfinite(tp + fp).all(), torch.isfinite(tp + fn).all()]
    if target_range is not None:
        flags.append((target_range[0] >= 0) & (target_range[1] <= 1))
    finite_x, finite_y, *in_range = torch.stack(flags).tolist()
    if in_range and not in_range[0]:
        check_soft_target(target, hint=hint)  # raises, with the range found or NaN/Inf
    for name, ok, t in (("input", finite_x, input), ("target", finite_y, target)):
        if not ok:
            raise ValueError(
                f"{name} contains NaN or Inf values (after the activation); the Dice loss is not defined. "
                f"Got {name} of shape {tuple(t.shape)} and dtype {t.dtype}."
            )


def loss_from_statistics(
    tp: torch.Tensor,
    fp: torch.Tensor,
    fn: torch.Tensor,
    phi: DiceDomain | str = DiceDomain.I,
    alpha: float = 0.5,
    beta: float = 0.5,
    gamma: float = 1.0,
    smooth_nr: torch.Tensor | float = 1e-5,
    smooth_dr: torch.Tensor | float = 1e-5,
    weight: torch.Tensor | None = None,
    sync_batch: bool = False,
) -> torch.Tensor:
    """
    The loss per element of the domain Phi from the per-image, per-class statistics; :py:func:`dice_semimetric_loss`
    is :py:func:`overlap_statistics` followed by this function.

    Args:
        tp, fp, fn: soft true positives, false positives and false negatives, each ``(B, C)``.
        phi: summation domain {``"I"``, ``"BI"``, ``"CI"``, ``"BCI"``}. Defaults to ``"I"``.
        alpha: weight of the false positives. Defaults to 0.5.
        beta: weight of the false negatives. Defaults to 0.5.
        gamma: focal exponent (>= 1). Defaults to 1.
        smooth_nr: numerator smoothing, a float or one value per class.
        smooth_dr: denominator smoothing, like ``smooth_nr``.
        weight: class weights ``(C,)`` or None, as in :py:func:`dice_semimetric_loss`.
        sync_batch: pool ``"BI"``/``"BCI"`` over the ranks of ``torch.distributed``.

    Returns:
        Loss of shape ``(B or 1, C or 1)``.

    Raises:
        ValueError: for an unknown ``phi``.
    """
    phi = look_up_option(phi, DiceDomain, "phi")
    n_classes = tp.shape[1]
    pools_classes = phi in (DiceDomain.CI, DiceDomain.BCI)
    if pools_classes and weight is not None:
        w = weight.to(tp).reshape(1, n_classes)
        tp, fp, fn = tp * w, fp * w, fn * w
    snr, sdr = (_per_class(s, n_classes, tp, pools_classes) for s in (smooth_nr, smooth_dr))
    tp, fp, fn = (pool_statistics(s, phi) for s in (tp, fp, fn))
    if sync_batch and phi in (DiceDomain.BI, DiceDomain.BCI):
        tp, fp, fn = all_reduce_sum(torch.stack([tp, fp, fn])).unbind(0)
    f = tversky_from_statistics(tp, fp, fn, alpha, beta, snr, sdr)
    if gamma != 1:
        f = f.clamp_min(0) ** gamma
    if weight is not None and not pools_classes:
        f = f * weight.to(f).reshape(1, n_classes)
    return f


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """
    Sum ``t`` over the ranks of the default process group, differentiably (the backward pass all-reduces the
    gradients too); ``t`` itself when ``torch.distributed`` is unavailable or not initialised.

    Args:
        t: a small tensor (e.g. stacked soft counts).

    Returns:
        the sum over ranks, of the shape of ``t``.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return t
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(t)  # type: ignore[no-any-return]


def _per_class(
    smooth: torch.Tensor | float, n_classes: int, like: torch.Tensor, pools_classes: bool
) -> torch.Tensor | float:
    if not isinstance(smooth, torch.Tensor) or smooth.ndim == 0:
        return smooth
    smooth = smooth.to(like).reshape(1, n_classes)
    return smooth.sum(dim=1, keepdim=True) if pools_classes else smooth
