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
"""Binned expected calibration error (ECE) of probability maps, per case and pooled over a data set.

Bins are the ``M`` equal-width, right-closed intervals of Guo et al. (2017),

.. math::

    I_1 = [0, \\tfrac{1}{M}],\\quad I_m = \\left(\\tfrac{m - 1}{M}, \\tfrac{m}{M}\\right]\\ (m = 2, \\dots, M),

the convention that ``monai.metrics.CalibrationErrorMetric`` follows too (its boundaries are shifted up by one
float32 epsilon, so a confidence exactly on an edge falls in the lower bin with either value of its ``right``
flag). The paper's own code (JDTLosses) uses left-closed bins; the two differ only for confidences exactly on an
edge ``m / M``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from monai.config import TensorOrList
from monai.utils import MetricReduction, StrEnum

from monai_dml.metrics.base import ReducedIterationMetric, check_metric_inputs
from monai_dml.utils import look_up_option

__all__ = ["ECEMode", "ECEMetric", "calibration_bin_sums", "compute_ece", "ece_from_bin_sums"]


class ECEMode(StrEnum):
    """
    Which calibration the binned ECE measures.

    - ``TOP_LABEL``: confidence ``max_c p_c`` against the accuracy of the arg-max class (Guo et al. 2017); one value
      per case.
    - ``CLASSWISE``: each class's probability ``p_c`` against the frequency of class ``c`` (marginal calibration);
      one value per case and class, as ``monai.metrics.CalibrationErrorMetric`` computes it.
    """

    TOP_LABEL = "top_label"
    CLASSWISE = "classwise"


def _check_num_bins(num_bins: int) -> None:
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins must be an integer >= 1, got {num_bins!r}.")


def _result_dtype(y_pred: torch.Tensor) -> torch.dtype:
    return torch.float64 if y_pred.dtype == torch.float64 else torch.float32


def _confidence_and_accuracy(
    y_pred: torch.Tensor, y: torch.Tensor, mode: ECEMode, include_background: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The binned quantity and its target per voxel, both ``(B, R, N)``: ``R = 1`` (top-label) or the classes kept."""
    dtype = y_pred.dtype if y_pred.dtype in (torch.float32, torch.float64) else torch.float32
    y_pred = y_pred.flatten(2).to(dtype)
    y = y.flatten(2).to(dtype)
    if mode == ECEMode.CLASSWISE:
        if not include_background and y_pred.shape[1] > 1:
            return y_pred[:, 1:], y[:, 1:]
        return y_pred, y
    if y_pred.shape[1] == 1:  # binary foreground probability: the classes are [1 - p, p], ties go to background
        foreground = y_pred > 0.5
        return torch.where(foreground, y_pred, 1 - y_pred), torch.where(foreground, y, 1 - y)
    conf, pred = y_pred.max(dim=1, keepdim=True)  # first maximal class on ties, like argmax
    return conf, y.gather(1, pred)


def _bin_sums(
    y_pred: torch.Tensor, y: torch.Tensor, num_bins: int, mode: ECEMode, include_background: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    conf, acc = _confidence_and_accuracy(y_pred, y, mode, include_background)
    b, r, _ = conf.shape
    # the inner edges k / M, rounded to the confidences' dtype so that a value written as k / M sits on its edge;
    # bucketize(right=False) returns i with edge[i - 1] < x <= edge[i]: right-closed bins, 0 in the first one
    edges = (torch.arange(1, num_bins, dtype=torch.float64, device=conf.device) / num_bins).to(conf.dtype)
    index = torch.bucketize(conf.contiguous(), edges)
    index += torch.arange(b * r, device=conf.device).view(b, r, 1) * num_bins
    index = index.flatten()
    size = b * r * num_bins
    counts = torch.bincount(index, minlength=size).to(torch.float64)
    sum_conf = torch.bincount(index, weights=conf.flatten().to(torch.float64), minlength=size)
    sum_acc = torch.bincount(index, weights=acc.flatten().to(torch.float64), minlength=size)
    return counts.view(b, r, num_bins), sum_conf.view(b, r, num_bins), sum_acc.view(b, r, num_bins)


def calibration_bin_sums(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    num_bins: int = 10,
    mode: ECEMode | str = ECEMode.TOP_LABEL,
    include_background: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Per-bin voxel counts, confidence sums and accuracy sums, per case: the sufficient statistics of the binned ECE.

    Sums, not means, so that they add over cases and batches: the pooled ECE of a data set is
    :py:func:`ece_from_bin_sums` of the summed statistics, and ``sum_acc / counts`` against ``sum_conf / counts``
    is its reliability diagram. See :py:func:`compute_ece` for the arguments and definitions.

    Returns:
        ``(counts, sum_conf, sum_acc)``, float64, each ``(B, R, num_bins)`` with ``R = 1`` in ``"top_label"`` mode
        and ``R = C`` (``C - 1`` without background) in ``"classwise"`` mode.

    Raises:
        ValueError: see :py:func:`compute_ece`.

    Example:
        >>> import torch
        >>> y_pred = torch.tensor([[[0.9, 0.7, 0.2]]])  # confidences 0.9, 0.7 and 0.8 (background)
        >>> counts, sum_conf, sum_acc = calibration_bin_sums(y_pred, torch.tensor([[[1.0, 0.0, 0.0]]]), num_bins=5)
        >>> counts  # 0.7 and 0.8 (on an edge) in (0.6, 0.8], 0.9 in (0.8, 1.0]
        tensor([[[0., 0., 0., 2., 1.]]], dtype=torch.float64)
        >>> sum_acc  # 0.7 predicts foreground (wrong), 0.8 background (right), 0.9 foreground (right)
        tensor([[[0., 0., 0., 1., 1.]]], dtype=torch.float64)
    """
    ece_mode = look_up_option(mode, ECEMode, "mode")
    _check_num_bins(num_bins)
    check_metric_inputs(y_pred, y)
    return _bin_sums(y_pred, y, num_bins, ece_mode, include_background)


def ece_from_bin_sums(counts: torch.Tensor, sum_conf: torch.Tensor, sum_acc: torch.Tensor) -> torch.Tensor:
    """
    The binned ECE from per-bin statistics (:py:func:`calibration_bin_sums`), reducing the last axis:

    .. math::

        \\mathrm{ECE} = \\sum_{m} \\frac{n_m}{N} \\left|\\mathrm{acc}_m - \\mathrm{conf}_m\\right|
        = \\frac{1}{N} \\sum_{m} \\Big|\\sum_{i \\in I_m} a_i - \\sum_{i \\in I_m} c_i\\Big|.

    Args:
        counts: voxel count per bin, ``(..., M)``.
        sum_conf: sum of the confidences per bin, same shape.
        sum_acc: sum of the accuracies per bin, same shape.

    Returns:
        ``(...)`` in the inputs' dtype; NaN where ``N = 0`` (no voxels).
    """
    total = counts.sum(dim=-1)
    gap = (sum_acc - sum_conf).abs().sum(dim=-1)
    return torch.where(total > 0, gap / torch.where(total > 0, total, torch.ones_like(total)), float("nan"))


def compute_ece(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    num_bins: int = 10,
    mode: ECEMode | str = ECEMode.TOP_LABEL,
    include_background: bool = True,
    percent: bool = False,
) -> torch.Tensor:
    """
    Binned expected calibration error (ECE) of a probability map against a reference, per case.

    Each voxel ``i`` gives a confidence ``c_i`` and an accuracy ``a_i``; with ``M`` equal-width right-closed bins
    ``I_m`` on [0, 1] (see the module docstring) and ``n_m`` voxels in bin ``m`` out of ``N``,

    .. math::

        \\mathrm{ECE} = \\sum_{m=1}^{M} \\frac{n_m}{N}
        \\left| \\frac{1}{n_m} \\sum_{i \\in I_m} a_i - \\frac{1}{n_m} \\sum_{i \\in I_m} c_i \\right|,

    empty bins contributing 0.

    - ``"top_label"`` (Guo et al. 2017): ``c_i = max_k p_ik`` and ``a_i = y_{i, k*}`` with ``k* = argmax_k p_ik``
      (the first maximal class on ties). For a one-hot ``y`` this is ``1[argmax p = argmax y]``; for a soft ``y`` it
      is the probability mass the reference gives to the predicted class, i.e. the expected accuracy against a
      label drawn from ``y``. A single channel is a binary foreground probability ``p``, taken as the two classes
      ``[1 - p, p]``: ``c = max(p, 1 - p)``, the predicted class is foreground where ``p > 0.5``. One value per
      case.
    - ``"classwise"``: for each class ``c``, ``c_i = p_ic`` and ``a_i = y_ic`` (for a one-hot ``y``, the frequency
      of class ``c`` in the bin). Identical to ``monai.metrics.CalibrationErrorMetric`` with
      ``calibration_reduction="expected"`` (see the module docstring for the edge convention).

    Wang, Z. et. al. (2023) Dice Semimetric Losses: Optimizing the Dice Score with Soft Labels. MICCAI 2023
    (Sect. 3.3: ECE with 10 bins against the majority vote, reported in %).

    Guo, C. et. al. (2017) On Calibration of Modern Neural Networks. ICML 2017.

    Args:
        y_pred: probabilities, shape ``(B, C, spatial...)``; for ``"top_label"`` with ``C > 1`` the channels should
            sum to 1 (a softmax output; this is not checked).
        y: reference, same shape, values in [0, 1]: one-hot (e.g. the majority vote) or soft.
        num_bins: the number of equal-width bins on [0, 1]. Defaults to 10 (the paper's setting).
        mode: {``"top_label"``, ``"classwise"``}. Defaults to ``"top_label"``.

            - ``"top_label"``: one value per case, ``(B, 1)``.
            - ``"classwise"``: one value per case and class, ``(B, C)``.
        include_background: in ``"classwise"`` mode, if False, channel 0 is dropped (when there is more than one
            channel). Ignored in ``"top_label"`` mode, whose arg-max needs every class. Defaults to True.
        percent: multiply by 100, the unit the paper reports. Defaults to False (a fraction in [0, 1]).

    Returns:
        float32 (float64 for a float64 ``y_pred``) tensor ``(B, 1)`` or ``(B, C)``. NaN only where a case has no
        voxels; a constant prediction is defined (a single filled bin: ``|mean accuracy - confidence|``).

    Raises:
        ValueError: when the shapes differ or have fewer than 3 dimensions, a map holds NaN/Inf or values outside
            [0, 1], ``num_bins`` is not an integer >= 1, or ``mode`` is unknown.

    Example:
        >>> import torch
        >>> y_pred = torch.full((1, 1, 10), 0.9)  # always 90% sure of the foreground ...
        >>> y = (torch.arange(10) < 6).float().view(1, 1, 10)  # ... which is right 60% of the time
        >>> compute_ece(y_pred, y)
        tensor([[0.3000]])
    """
    ece_mode = look_up_option(mode, ECEMode, "mode")
    _check_num_bins(num_bins)
    check_metric_inputs(y_pred, y)
    ece = ece_from_bin_sums(*_bin_sums(y_pred, y, num_bins, ece_mode, include_background))
    return (ece * 100 if percent else ece).to(_result_dtype(y_pred))


class ECEMetric(ReducedIterationMetric):
    """
    Binned expected calibration error (:py:func:`compute_ece`) accumulated over iterations, two ways:

    - :py:meth:`aggregate`: the per-case ECEs ``(N_cases, R)`` reduced with ``reduction`` (the mean over cases by
      default), as MONAI's metrics do.
    - :py:meth:`aggregate_pooled`: the ECE of all voxels of all cases pooled into one set of bins, the "aggregated
      validation set" ECE of Wang et al. (2023) (JDTLosses' ``ECED``). The metric keeps per-case bin sums (float64,
      ``3 * num_bins`` numbers per case and class), so the result does not depend on how the data is batched, and
      cases of different sizes mix freely.

    Guo, C. et. al. (2017) On Calibration of Modern Neural Networks. ICML 2017.

    Example:
        >>> import torch
        >>> metric = ECEMetric(num_bins=10)
        >>> metric(torch.full((1, 1, 4), 0.9), torch.tensor([[[1.0, 1.0, 1.0, 0.0]]]))  # |0.75 - 0.9|
        tensor([[0.1500]])
        >>> metric(torch.full((1, 1, 4), 0.9), torch.tensor([[[1.0, 1.0, 1.0, 1.0]]]))  # |1.0 - 0.9|
        tensor([[0.1000]])
        >>> metric.aggregate()  # the mean of the per-case values
        tensor([0.1250])
        >>> metric.aggregate_pooled()  # one bin holding all 8 voxels: |7/8 - 0.9|
        tensor([0.0250])
    """

    def __init__(
        self,
        num_bins: int = 10,
        mode: ECEMode | str = ECEMode.TOP_LABEL,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
        percent: bool = False,
    ) -> None:
        """
        Args:
            num_bins: the number of equal-width bins on [0, 1]. Defaults to 10.
            mode: {``"top_label"``, ``"classwise"``}, see :py:func:`compute_ece`. Defaults to ``"top_label"``.
            include_background: in ``"classwise"`` mode, if False, channel 0 is dropped. Defaults to True.
            reduction: MONAI's ``MetricReduction`` for :py:meth:`aggregate`. Defaults to ``"mean"``.
            get_not_nans: also return the count of non-NaN entries from :py:meth:`aggregate`. Defaults to False.
            percent: report in % (the paper's unit). Defaults to False.

        Raises:
            ValueError: when ``num_bins`` is not an integer >= 1, or ``mode`` or ``reduction`` is unknown.
        """
        _check_num_bins(num_bins)
        super().__init__(include_background, reduction, get_not_nans)
        self.num_bins = num_bins
        self.mode = look_up_option(mode, ECEMode, "mode")
        self.percent = percent
        if self.mode == ECEMode.TOP_LABEL and not include_background:
            warnings.warn("include_background=False is ignored in 'top_label' mode.", stacklevel=2)

    def __call__(self, y_pred: TensorOrList, y: TensorOrList | None = None, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        """
        Compute and accumulate one iteration (a batch-first tensor or a list of channel-first tensors).

        Returns:
            the per-case ECE ``(B, R)`` of this iteration.
        """
        return super().__call__(y_pred, y, **kwargs)[0]  # type: ignore[return-value]

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> list[torch.Tensor]:  # type: ignore[override]
        if y is None:
            raise ValueError("y must be given: the ECE needs a reference.")
        check_metric_inputs(y_pred, y)
        sums = torch.stack(_bin_sums(y_pred, y, self.num_bins, self.mode, self.include_background), dim=2)
        ece = self._scale(ece_from_bin_sums(sums[:, :, 0], sums[:, :, 1], sums[:, :, 2]))
        return [ece.to(_result_dtype(y_pred)), sums]

    def _scale(self, ece: torch.Tensor) -> torch.Tensor:
        return ece * 100 if self.percent else ece

    def _accumulated(self) -> list[torch.Tensor]:
        data = super().get_buffer()  # both buffers: per-case ECEs and per-case bin sums
        if not isinstance(data, list) or len(data) != 2:
            raise ValueError("nothing to aggregate: call the metric on some data first.")
        return data

    def get_buffer(self) -> Any:
        """
        The accumulated per-case ECEs ``(N_cases, R)``, which MONAI's handlers save as metric details (e.g. the
        per-case CSV of ``MetricsSaver``); the bin sums behind :py:meth:`aggregate_pooled` are kept aside.
        """
        data = super().get_buffer()
        return data[0] if isinstance(data, list) else data

    def pooled_bin_sums(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        The bin statistics of all accumulated voxels, for reliability diagrams.

        Returns:
            ``(counts, sum_conf, sum_acc)``, float64, each ``(R, num_bins)``.

        Raises:
            ValueError: when nothing was accumulated.
        """
        sums = self._accumulated()[1].sum(dim=0)
        return sums[:, 0], sums[:, 1], sums[:, 2]

    def aggregate_pooled(self) -> torch.Tensor:
        """
        The ECE of all accumulated voxels pooled into one set of bins (the data set ECE).

        Returns:
            float32 ``(R,)``: ``(1,)`` in ``"top_label"`` mode, one value per class in ``"classwise"`` mode; NaN only
            when no voxel was seen.

        Raises:
            ValueError: when nothing was accumulated.
        """
        return self._scale(ece_from_bin_sums(*self.pooled_bin_sums())).float()
