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

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.utils import MetricReduction

from monai_dml.metrics.base import ReducedIterationMetric, check_metric_inputs

__all__ = [
    "BinarizedDiceMetric",
    "QUBIQ_THRESHOLDS",
    "SoftDiceMetric",
    "compute_binarized_dice",
    "compute_soft_dice",
    "soft_dice_unchecked",
]

#: The thresholds of QUBIQ's binarized Dice: 0.1, 0.2, ..., 0.9.
QUBIQ_THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 10))


def compute_soft_dice(
    y_pred: torch.Tensor, y: torch.Tensor, include_background: bool = True, ignore_empty: bool = False
) -> torch.Tensor:
    """
    Dice score between two maps in [0, 1], hard or soft, per image and class.

    .. math::

        \\mathrm{Dice}(x, y) = \\frac{2 \\sum_i \\min(x_i, y_i)}{\\sum_i x_i + \\sum_i y_i}

    On binary maps this is the usual Dice score; on soft maps it is ``1 - DML1`` (Wang et al. 2023), the soft Dice
    that equals 1 exactly when the two maps are equal, unlike ``2 <x, y> / (|x| + |y|)``.

    Args:
        y_pred: first map (prediction or rater), shape ``(B, C, spatial...)``, values in [0, 1].
        y: second map (reference), same shape, values in [0, 1].
        include_background: if False, channel 0 is dropped (when there is more than one channel).
        ignore_empty: the rule for an empty reference (``sum(y) == 0``), with the meaning of MONAI's
            ``DiceMetric(ignore_empty=...)``: True gives NaN (skipped by the metrics' reduction), False gives 1
            where the prediction is empty too and 0 otherwise. Defaults to False (MONAI's default is True), the
            rule QUBIQ's binarized Dice uses at each level, so the two metrics agree on empty pairs.

    Returns:
        float tensor of shape ``(B, C)`` (``C - 1`` without background).

    Raises:
        ValueError: when the shapes differ, have fewer than 3 dimensions, or a map is outside [0, 1] or holds NaN/Inf.

    Example:
        >>> import torch
        >>> a = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
        >>> b = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
        >>> compute_soft_dice(a, b)  # 2 * 1 / (2 + 1)
        tensor([[0.6667]])
        >>> empty = torch.zeros(1, 1, 4)
        >>> compute_soft_dice(empty, empty), compute_soft_dice(empty, empty, ignore_empty=True)
        (tensor([[1.]]), tensor([[nan]]))
    """
    check_metric_inputs(y_pred, y)
    if not include_background and y_pred.shape[1] > 1:
        y_pred, y = y_pred[:, 1:], y[:, 1:]
    return _dice_empty_rule(y_pred, y, ignore_empty)


def _dice_empty_rule(y_pred: torch.Tensor, y: torch.Tensor, ignore_empty: bool) -> torch.Tensor:
    """:py:func:`soft_dice_unchecked` with MONAI's ``ignore_empty`` rule where ``y`` is empty; float32 ``(B, C)``."""
    dims = tuple(range(2, y_pred.ndim))
    acc = torch.float64 if y_pred.dtype == torch.float64 else torch.float32
    intersection = torch.minimum(y_pred, y).sum(dim=dims, dtype=acc)
    pred_sum, ref_sum = y_pred.sum(dim=dims, dtype=acc), y.sum(dim=dims, dtype=acc)
    total = pred_sum + ref_sum
    dice = 2 * intersection / torch.where(total > 0, total, 1.0)
    if ignore_empty:
        empty_value = torch.full_like(total, float("nan"))
    else:
        empty_value = (pred_sum == 0).to(acc)
    return torch.where(ref_sum > 0, dice, empty_value).float()


def soft_dice_unchecked(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """
    :py:func:`compute_soft_dice` without input checks, for callers that validated already; ``y`` may broadcast
    against ``y_pred``. Sums accumulate in float32 (float64 for float64 input) without copying the inputs; float32
    pairwise summation is exact for voxel counts up to 2**24 per image and class and accurate to ~1e-7 relative
    for soft maps, and half-precision input cannot overflow.

    Args:
        y_pred: ``(B, C, spatial...)`` map in [0, 1].
        y: map in [0, 1], broadcastable to ``y_pred``.

    Returns:
        float32 ``(B, C)``; NaN where both maps are empty.
    """
    dims = tuple(range(2, y_pred.ndim))
    acc = torch.float64 if y_pred.dtype == torch.float64 else torch.float32  # half precision would overflow
    intersection = torch.minimum(y_pred, y).sum(dim=dims, dtype=acc)
    total = y_pred.sum(dim=dims, dtype=acc) + y.sum(dim=dims, dtype=acc)
    nan = torch.full_like(total, float("nan"))
    return torch.where(total > 0, 2 * intersection / torch.where(total > 0, total, 1.0), nan).float()


def _check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    """
    The levels as Python floats, not a float32 tensor: ``map > t`` with a Python float compares in the map's own
    dtype, so a map value equal to a level (0.9 stored as float64, float32 or float16) is background at that level
    whatever the map's precision, as the strict rule says. A float32 copy of the level would make a float64 0.9
    exceed the rounded-down float32 0.9.
    """
    try:
        levels = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError) as e:
        raise ValueError(f"thresholds must be a non-empty sequence of values in (0, 1), got {thresholds!r}.") from e
    if not levels or any(not 0 < t < 1 for t in levels):
        raise ValueError(f"thresholds must be a non-empty sequence of values in (0, 1), got {list(levels)}.")
    return levels


def compute_binarized_dice(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    thresholds: Sequence[float] = QUBIQ_THRESHOLDS,
    include_background: bool = True,
    ignore_empty: bool = False,
) -> torch.Tensor:
    """
    Binarized Dice (BDice), QUBIQ's official metric: prediction and soft label are both thresholded at each level
    ``t`` (a voxel is foreground where its value is **strictly greater** than ``t``), the Dice score is computed at
    each level, and the scores are averaged over the levels.

    .. math::

        \\mathrm{BDice}(x, y) = \\frac{1}{|T|} \\sum_{t \\in T} \\mathrm{Dice}(1[x > t], 1[y > t])

    A level where the binarized reference is empty follows MONAI's ``ignore_empty`` rule (as
    :py:func:`compute_soft_dice`): by default (False) its Dice score is 1 where the binarized prediction is empty too
    (perfect agreement, the value the QUBIQ evaluation's smoothing term gives) and 0 otherwise, so BDice is always
    defined; with True the level is left out of the mean (NaN where every level's reference is empty).
    The comparison ``> t`` is made in the maps' own dtype: a value stored exactly at a level is background there
    in float16, float32 and float64 alike.

    Menze, B. et. al. (2020) Quantification of Uncertainties in Biomedical Image Quantification Challenge. MICCAI.

    Args:
        y_pred: probabilities, shape ``(B, C, spatial...)``.
        y: soft label (e.g. the mean of the raters), same shape.
        thresholds: the levels, each in (0, 1). Defaults to 0.1, 0.2, ..., 0.9.
        include_background: if False, channel 0 is dropped (when there is more than one channel).
        ignore_empty: the rule for a level whose binarized reference is empty, see above. Defaults to False.

    Returns:
        float tensor ``(B, C)``.

    Raises:
        ValueError: for mismatched shapes, values outside [0, 1] or NaN/Inf, or thresholds outside (0, 1) or empty.

    Example:
        >>> import torch
        >>> y = torch.tensor([[[1.0, 0.6, 0.2, 0.0]]])
        >>> compute_binarized_dice(y, y)
        tensor([[1.]])
    """
    levels = _check_thresholds(thresholds)
    check_metric_inputs(y_pred, y)
    if not include_background and y_pred.shape[1] > 1:
        y_pred, y = y_pred[:, 1:], y[:, 1:]
    scores = torch.stack([_dice_empty_rule((y_pred > t).float(), (y > t).float(), ignore_empty) for t in levels])
    return scores.nanmean(dim=0) if ignore_empty else scores.mean(dim=0)


class SoftDiceMetric(ReducedIterationMetric):
    """
    Dice score between probability maps and (soft) labels, accumulated over iterations, per image and class:
    ``2 sum min(x, y) / (sum x + sum y)`` (:py:func:`compute_soft_dice`). With ``threshold`` both maps are first
    binarized (``> threshold``), which gives the usual hard Dice, e.g. of the prediction against the majority vote
    as the paper evaluates QUBIQ. An empty reference follows MONAI's ``ignore_empty`` rule (default False: 1 where
    the prediction is empty too, 0 otherwise; True: NaN, skipped by the reduction and counted by ``get_not_nans``).

    Example:
        >>> import torch
        >>> metric = SoftDiceMetric()
        >>> metric(torch.tensor([[[0.5, 0.5]]]), torch.tensor([[[1.0, 0.0]]]))
        tensor([[0.5000]])
        >>> metric.aggregate()
        tensor([0.5000])
    """

    def __init__(
        self,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
        threshold: float | None = None,
        ignore_empty: bool = False,
    ) -> None:
        """
        Args:
            include_background: if False, channel 0 is dropped. Defaults to True.
            reduction: MONAI's ``MetricReduction`` for :py:meth:`aggregate`. Defaults to ``"mean"``.
            get_not_nans: also return the count of non-NaN entries from :py:meth:`aggregate`. Defaults to False.
            threshold: binarize both maps at this level (``> threshold``) before the Dice score; None keeps them soft.
            ignore_empty: where the reference is empty, True gives NaN and False gives 1 if the prediction is empty
                too, else 0 (MONAI's ``DiceMetric`` semantics; its default is True). Defaults to False.

        Raises:
            ValueError: when ``threshold`` is not in [0, 1).
        """
        super().__init__(include_background, reduction, get_not_nans)
        if threshold is not None and not 0 <= threshold < 1:
            raise ValueError(f"threshold must be in [0, 1) or None, got {threshold}.")
        self.threshold = threshold
        self.ignore_empty = ignore_empty

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.threshold is not None:
            check_metric_inputs(y_pred, y)
            y_pred, y = (y_pred > self.threshold).float(), (y > self.threshold).float()
        return compute_soft_dice(y_pred, y, self.include_background, self.ignore_empty)


class BinarizedDiceMetric(ReducedIterationMetric):
    """
    QUBIQ's binarized Dice (:py:func:`compute_binarized_dice`) accumulated over iterations, per image and class.

    Example:
        >>> import torch
        >>> metric = BinarizedDiceMetric()
        >>> metric(torch.tensor([[[0.95, 0.05]]]), torch.tensor([[[1.0, 0.0]]]))
        tensor([[1.]])
    """

    def __init__(
        self,
        thresholds: Sequence[float] = QUBIQ_THRESHOLDS,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
        ignore_empty: bool = False,
    ) -> None:
        """
        Args:
            thresholds: the levels, each in (0, 1). Defaults to 0.1, ..., 0.9.
            include_background: if False, channel 0 is dropped. Defaults to True.
            reduction: MONAI's ``MetricReduction`` for :py:meth:`aggregate`. Defaults to ``"mean"``.
            get_not_nans: also return the count of non-NaN entries from :py:meth:`aggregate`. Defaults to False.
            ignore_empty: a level whose binarized reference is empty scores 1 or 0 (False, QUBIQ's rule) or is left
                out (True), see :py:func:`compute_binarized_dice`. Defaults to False.

        Raises:
            ValueError: for thresholds outside (0, 1) or empty.
        """
        super().__init__(include_background, reduction, get_not_nans)
        self.thresholds = _check_thresholds(thresholds)
        self.ignore_empty = ignore_empty

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return compute_binarized_dice(y_pred, y, self.thresholds, self.include_background, self.ignore_empty)
