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

from typing import Any

import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

from monai_dml.utils import check_soft_target, look_up_option

__all__ = ["ReducedIterationMetric", "check_metric_inputs"]


def check_metric_inputs(y_pred: torch.Tensor, y: torch.Tensor) -> None:
    """
    Raise unless ``y_pred`` and ``y`` are ``(B, C, spatial...)`` maps of one shape with finite values in [0, 1].

    Args:
        y_pred: the prediction.
        y: the reference.

    Raises:
        ValueError: naming ``y_pred`` or ``y``, with both shapes or the range found.
    """
    if y_pred.shape != y.shape:
        raise ValueError(f"y_pred and y must have the same shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
    if y_pred.ndim < 3:
        raise ValueError(f"y_pred must have shape (B, C, spatial...), got {tuple(y_pred.shape)}.")
    check_soft_target(y_pred, "y_pred")
    check_soft_target(y, "y")


class ReducedIterationMetric(CumulativeIterationMetric):
    """
    The ``CumulativeIterationMetric`` plumbing the package's per-image metrics share: each iteration yields a
    ``(B, C)`` tensor, :py:meth:`aggregate` reduces the accumulated ``(N, C)`` buffer with MONAI's
    ``do_metric_reduction`` (NaN entries skipped) and optionally returns the count of non-NaN entries.
    """

    def __init__(
        self,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        """
        Args:
            include_background: if False, channel 0 is dropped (when there is more than one). Defaults to True.
            reduction: MONAI's ``MetricReduction`` used by :py:meth:`aggregate`. Defaults to ``"mean"``.
            get_not_nans: also return the count of non-NaN entries from :py:meth:`aggregate`. Defaults to False.

        Raises:
            ValueError: for an unknown ``reduction``.
        """
        super().__init__()
        self.include_background = include_background
        self.reduction = look_up_option(reduction, MetricReduction, "reduction")
        self.get_not_nans = get_not_nans

    def aggregate(self, reduction: MetricReduction | str | None = None) -> Any:
        """
        Args:
            reduction: overrides ``self.reduction`` for this call; {``"none"``, ``"mean"``, ``"sum"``,
                ``"mean_batch"``, ``"sum_batch"``, ``"mean_channel"``, ``"sum_channel"``}.

        Returns:
            the reduced metric, and the number of non-NaN entries when ``get_not_nans``.

        Raises:
            ValueError: when nothing tensor-valued was accumulated, or for an unknown ``reduction``.
        """
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"nothing to aggregate: call the metric on data first (buffer: {type(data).__name__}).")
        chosen = self.reduction if reduction is None else look_up_option(reduction, MetricReduction, "reduction")
        f, not_nans = do_metric_reduction(data, chosen)
        return (f, not_nans) if self.get_not_nans else f
