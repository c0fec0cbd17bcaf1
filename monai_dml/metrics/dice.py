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


def compute_soft_dice(y_pred: torch.Tensor, y: torch.Tensor, include_background: bool = True) -> torch.Tensor:
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

    Returns:
        float tensor of shape ``(B, C)`` (``C - 1`` without background). Where both maps are empty the score is
        undefined and NaN is returned, as MONAI's metrics do; callers decide what an empty pair means.

    Raises:
        ValueError: when the shapes differ, have fewer than 3 dimensions, or a map is outside [0, 1] or holds NaN/Inf.

    Example:
        >>> import torch
        >>> a = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
        >>> b = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
        >>> compute_soft_dice(a, b)  # 2 * 1 / (2 + 1)
        tensor([[0.6667]])
    """
    check_metric_inputs(y_pred, y)
    if not include_background and y_pred.shape[1] > 1:
        y_pred, y = y_pred[:, 1:], y[:, 1:]
    return soft_dice_unchecked(y_pred, y)


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


def _check_thresholds(thresholds: Sequence[float]) -> torch.Tensor:
    levels = torch.as_tensor(list(thresholds), dtype=torch.float32)
    if levels.numel() == 0 or bool((levels <= 0).any()) or bool((levels >= 1).any()):
        raise ValueError(f"thresholds must be a non-empty sequence of values in (0, 1), got {levels.tolist()}.")
    return levels


def compute_binarized_dice(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    thresholds: Sequence[float] = QUBIQ_THRESHOLDS,
    include_background: bool = True,
) -> torch.Tensor:
    """
    Binarized Dice (BDice), QUBIQ's official metric: prediction and soft label are both thresholded at each level
    ``t`` (a voxel is foreground where its value is **strictly greater** than ``t``), the Dice score is computed at
    each level, and the scores are averaged over the levels.

    .. math::

        \\mathrm{BDice}(x, y) = \\frac{1}{|T|} \\sum_{t \\in T} \\mathrm{Dice}(1[x > t], 1[y > t])

    At a level where both binarized maps are empty the Dice score is taken as 1 (perfect agreement, the value the
    QUBIQ evaluation's smoothing term gives), so BDice is always defined.

    Menze, B. et. al. (2020) Quantification of Uncertainties in Biomedical Image Quantification Challenge. MICCAI.

    Args:
        y_pred: probabilities, shape ``(B, C, spatial...)``.
        y: soft label (e.g. the mean of the raters), same shape.
        thresholds: the levels, each in (0, 1). Defaults to 0.1, 0.2, ..., 0.9.
        include_background: if False, channel 0 is dropped (when there is more than one channel).

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
    scores = []
    for t in levels.tolist():
        dice = soft_dice_unchecked((y_pred > t).float(), (y > t).float())
        scores.append(torch.nan_to_num(dice, nan=1.0))
    return torch.stack(scores).mean(dim=0)


class SoftDiceMetric(ReducedIterationMetric):
    """
    Dice score between probability maps and (soft) labels, accumulated over iterations, per image and class:
    ``2 sum min(x, y) / (sum x + sum y)`` (:py:func:`compute_soft_dice`). With ``threshold`` both maps are first
    binarized (``> threshold``), which gives the usual hard Dice, e.g. of the prediction against the majority vote
    as the paper evaluates QUBIQ. Empty pairs are NaN and skipped by the reduction.

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
    ) -> None:
        """
        Args:
            include_background: if False, channel 0 is dropped. Defaults to True.
            reduction: MONAI's ``MetricReduction`` for :py:meth:`aggregate`. Defaults to ``"mean"``.
            get_not_nans: also return the count of non-NaN entries from :py:meth:`aggregate`. Defaults to False.
            threshold: binarize both maps at this level (``> threshold``) before the Dice score; None keeps them soft.

        Raises:
            ValueError: when ``threshold`` is not in [0, 1).
        """
        super().__init__(include_background, reduction, get_not_nans)
        if threshold is not None and not 0 <= threshold < 1:
            raise ValueError(f"threshold must be in [0, 1) or None, got {threshold}.")
        self.threshold = threshold

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.threshold is not None:
            check_metric_inputs(y_pred, y)
            y_pred, y = (y_pred > self.threshold).float(), (y > self.threshold).float()
        return compute_soft_dice(y_pred, y, self.include_background)


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
    ) -> None:
        """
        Args:
            thresholds: the levels, each in (0, 1). Defaults to 0.1, ..., 0.9.
            include_background: if False, channel 0 is dropped. Defaults to True.
            reduction: MONAI's ``MetricReduction`` for :py:meth:`aggregate`. Defaults to ``"mean"``.
            get_not_nans: also return the count of non-NaN entries from :py:meth:`aggregate`. Defaults to False.
        """
        super().__init__(include_background, reduction, get_not_nans)
        self.thresholds = tuple(_check_thresholds(thresholds).tolist())

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return compute_binarized_dice(y_pred, y, self.thresholds, self.include_background)
