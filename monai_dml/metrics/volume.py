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
from monai.utils import MetricReduction, StrEnum

from monai_dml.metrics.base import ReducedIterationMetric, check_metric_inputs
from monai_dml.utils import look_up_option

__all__ = ["VolumeBiasMetric", "VolumeMode", "compute_volume_bias"]


class VolumeMode(StrEnum):
    """How the predicted volume is counted: ``SOFT`` sums probabilities, ``HARD`` counts voxels with ``p > 0.5``."""

    SOFT = "soft"
    HARD = "hard"


def compute_volume_bias(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    mode: VolumeMode | str = VolumeMode.SOFT,
    relative: bool = True,
    include_background: bool = True,
) -> torch.Tensor:
    """
    Volume bias of a prediction per image and class: predicted minus label volume, relative to the label volume.

    .. math::

        b = \\frac{V(x) - \\sum_i y_i}{\\sum_i y_i}, \\qquad V(x) = \\sum_i x_i \\ (\\text{soft}) \\ \\text{or}
        \\ \\sum_i 1[x_i > 1/2] \\ (\\text{hard})

    The label volume of a soft label is its expected volume ``sum y``. Nordström et al. show that soft-Dice optimal
    segmentations of a soft label are thresholded at ``D*/2 <= 1/2`` and so over-estimate the volume of a
    symmetrically blurred structure; a calibrated prediction has no soft volume bias (Popordanoska et al. 2021).

    Nordström, M. et. al. (2023) Noisy Image Segmentation With Soft-Dice. arXiv.

    Args:
        y_pred: probabilities, shape ``(B, C, spatial...)``.
        y: label (hard or soft), same shape.
        mode: {``"soft"``, ``"hard"``}, how the predicted volume is counted. Defaults to ``"soft"``.
        relative: divide by the label volume. Where the label volume is 0 the relative bias is undefined: NaN.
            With False the difference is in voxels. Defaults to True.
        include_background: if False, channel 0 is dropped (when there is more than one channel).

    Returns:
        float tensor ``(B, C)``.

    Raises:
        ValueError: for mismatched shapes, values outside [0, 1], NaN/Inf, or an unknown ``mode``.

    Example:
        >>> import torch
        >>> compute_volume_bias(torch.tensor([[[0.9, 0.6, 0.0]]]), torch.tensor([[[1.0, 0.0, 0.0]]]))  # 1.5 vs 1
        tensor([[0.5000]])
    """
    mode = look_up_option(mode, VolumeMode, "mode")
    check_metric_inputs(y_pred, y)
    if not include_background and y_pred.shape[1] > 1:
        y_pred, y = y_pred[:, 1:], y[:, 1:]
    dims = tuple(range(2, y_pred.ndim))
    predicted = (y_pred > 0.5).float() if mode == VolumeMode.HARD else y_pred.float()
    pred_volume = predicted.sum(dim=dims, dtype=torch.float64)
    label_volume = y.float().sum(dim=dims, dtype=torch.float64)
    bias = pred_volume - label_volume
    if relative:
        nan = torch.full_like(bias, float("nan"))
        bias = torch.where(label_volume > 0, bias / torch.where(label_volume > 0, label_volume, 1.0), nan)
    return bias.float()


class VolumeBiasMetric(ReducedIterationMetric):
    """
    :py:func:`compute_volume_bias` accumulated over iterations, per image and class. Cases whose label volume is 0
    are NaN with ``relative=True`` and skipped by the reduction.

    Example:
        >>> import torch
        >>> metric = VolumeBiasMetric(mode="hard")
        >>> metric(torch.tensor([[[0.9, 0.6, 0.0]]]), torch.tensor([[[1.0, 0.0, 0.0]]]))  # 2 voxels vs 1
        tensor([[1.]])
    """

    def __init__(
        self,
        mode: VolumeMode | str = VolumeMode.SOFT,
        relative: bool = True,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        """
        Args:
            mode: see :py:func:`compute_volume_bias`.
            relative: see :py:func:`compute_volume_bias`.
            include_background: if False, channel 0 is dropped. Defaults to True.
            reduction: MONAI's ``MetricReduction`` for :py:meth:`aggregate`. Defaults to ``"mean"``.
            get_not_nans: also return the count of non-NaN entries from :py:meth:`aggregate`. Defaults to False.

        Raises:
            ValueError: for an unknown ``mode``.
        """
        super().__init__(include_background, reduction, get_not_nans)
        self.mode = look_up_option(mode, VolumeMode, "mode")
        self.relative = relative

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return compute_volume_bias(y_pred, y, self.mode, self.relative, self.include_background)
