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

import torch

from monai_dml.losses.functional import check_soft_target

__all__ = ["compute_soft_dice", "soft_dice_unchecked"]


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
    if y_pred.shape != y.shape:
        raise ValueError(f"y_pred and y must have the same shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
    if y_pred.ndim < 3:
        raise ValueError(f"y_pred must have shape (B, C, spatial...), got {tuple(y_pred.shape)}.")
    check_soft_target(y_pred, "y_pred")
    check_soft_target(y, "y")
    if not include_background and y_pred.shape[1] > 1:
        y_pred, y = y_pred[:, 1:], y[:, 1:]
    return soft_dice_unchecked(y_pred, y)


def soft_dice_unchecked(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """
    :py:func:`compute_soft_dice` without input checks, for callers that validated already; ``y`` may broadcast
    against ``y_pred``. Sums accumulate in the inputs' floating dtype (float32 pairwise summation is exact for
    voxel counts up to 2**24 per image and class, and accurate to ~1e-7 relative for soft maps).

    Returns:
        float32 ``(B, C)``; NaN where both maps are empty.
    """
    dims = tuple(range(2, y_pred.ndim))
    intersection = torch.minimum(y_pred, y).sum(dim=dims)
    total = y_pred.sum(dim=dims) + y.sum(dim=dims)
    nan = torch.full_like(total, float("nan"))
    return torch.where(total > 0, 2 * intersection / torch.where(total > 0, total, 1.0), nan).float()
