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
"""Post-hoc calibration of probability maps, e.g. of a teacher before distillation.

Both calibrators are fitted on held-out ``(B, C, spatial...)`` probabilities and labels, then map each voxel's
probability vector on its own, on channel-first maps with or without a batch axis:

- :py:class:`TemperatureScaling` (Guo et al. 2017): ``softmax(log p / T)`` with ``T`` minimising the NLL.
- :py:class:`KDECalibrator`: the Dirichlet-kernel estimate of ``E[y | f(x) = p]`` (Popordanoska et al. 2022), which
  Wang et al. (2023) use instead of temperature scaling to calibrate the teacher.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod

import torch
from monai.config import NdarrayOrTensor
from monai.utils import convert_to_dst_type, convert_to_tensor
from scipy.optimize import minimize_scalar

from monai_dml.metrics.base import check_metric_inputs
from monai_dml.metrics.calibration import ECEMode, calibration_bin_sums, ece_from_bin_sums
from monai_dml.metrics.kde import DEFAULT_BANDWIDTH, KDEKernel, _check_bandwidth, kde_conditional_expectation
from monai_dml.utils import (
    check_channel_sums,
    check_probability_map,
    check_soft_target,
    look_up_option,
    temper_probabilities,
)

__all__ = ["PosthocCalibrator", "TemperatureScaling", "KDECalibrator", "calibration_report"]


def _check_max_voxels(max_fit_voxels: int | None) -> None:
    if max_fit_voxels is not None and (
        isinstance(max_fit_voxels, bool) or not isinstance(max_fit_voxels, int) or max_fit_voxels < 1
    ):
        raise ValueError(f"max_fit_voxels must be an integer >= 1 or None, got {max_fit_voxels!r}.")


def _voxel_rows(
    y_pred: torch.Tensor, y: torch.Tensor, max_voxels: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, C, spatial...)`` pairs -> ``(n, C)`` float64 rows, ``n <= max_voxels`` drawn uniformly over all voxels."""
    channels = y_pred.shape[1]
    f = y_pred.movedim(1, 0).reshape(channels, -1)
    t = y.movedim(1, 0).reshape(channels, -1)
    n = f.shape[1]
    if max_voxels is not None and n > max_voxels:
        index = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_voxels].to(f.device)
        f, t = f[:, index], t[:, index]
    return f.T.to(torch.float64), t.T.to(torch.float64)


class PosthocCalibrator(ABC):
    """
    A voxel-wise map of probability vectors fitted on held-out data: :py:meth:`fit`, then call.

    ``C = 1`` channel is a binary foreground probability ``p`` (the classes ``[1 - p, p]``), returned as one channel;
    otherwise the channels sum to 1, in and out.
    """

    def __init__(self) -> None:
        self.num_channels: int | None = None

    @abstractmethod
    def fit(self, y_pred: torch.Tensor, y: torch.Tensor) -> PosthocCalibrator:
        """Fit on ``(B, C, spatial...)`` probabilities ``y_pred`` and labels ``y``; return ``self``."""

    @abstractmethod
    def _calibrate(self, probs: torch.Tensor) -> torch.Tensor:
        """Checked float64 channel-first ``(C, ...)`` probabilities -> calibrated, same shape."""

    def _check_fit_inputs(self, y_pred: torch.Tensor, y: torch.Tensor) -> None:
        check_metric_inputs(y_pred, y)
        check_channel_sums(y_pred, "y_pred", dim=1)

    def _channel_axis(self, probs: torch.Tensor, batched: bool | None) -> int:
        c = self.num_channels
        if batched is None:
            first = probs.ndim >= 2 and probs.shape[0] == c
            second = probs.ndim >= 3 and probs.shape[1] == c
            if first and second:
                raise ValueError(
                    f"probs of shape {tuple(probs.shape)} could be (C, spatial...) or (B, C, spatial...) with C={c}; "
                    "pass batched=True or batched=False."
                )
            batched = second
        axis = 1 if batched else 0
        if probs.ndim < axis + 2 or probs.shape[axis] != c:
            layout = "(B, C, spatial...)" if batched else "(C, spatial...)"
            raise ValueError(f"probs must have shape {layout} with C={c} as fitted, got {tuple(probs.shape)}.")
        return axis

    def __call__(self, probs: NdarrayOrTensor, batched: bool | None = None) -> NdarrayOrTensor:
        """
        Calibrate a probability map.

        Args:
            probs: ``(C, spatial...)`` or ``(B, C, spatial...)`` probabilities with the fitted number of channels.
            batched: whether axis 0 is a batch axis. None infers it from where the fitted channel count is, and
                raises when both readings fit (e.g. ``B == C``). Defaults to None.

        Returns:
            float32 calibrated probabilities, same shape and type (NumPy in, NumPy out).

        Raises:
            RuntimeError: before :py:meth:`fit`.
            ValueError: when ``probs`` is not a probability map with the fitted number of channels.
        """
        if self.num_channels is None:
            raise RuntimeError(f"{type(self).__name__} must be fitted before it is called: call fit() first.")
        probs_t = convert_to_tensor(probs, track_meta=False)
        axis = self._channel_axis(probs_t, batched)
        channel_first = probs_t.movedim(axis, 0).to(torch.float64)
        check_probability_map(channel_first, "probs")
        out = self._calibrate(channel_first).movedim(0, axis)
        return convert_to_dst_type(out, probs, dtype=torch.float32)[0]


class TemperatureScaling(PosthocCalibrator):
    """
    Temperature scaling: one temperature ``T > 0`` for all voxels and classes,

    .. math::

        q_c = \\frac{p_c^{1/T}}{\\sum_k p_k^{1/T}} = \\mathrm{softmax}(z / T)_c,

    fitted by minimising the negative log-likelihood of the labels on held-out data (a bounded scalar search over
    ``log T``; the NLL is convex in ``1/T``, so the optimum is unique). ``T > 1`` softens an over-confident model.
    The map is :py:func:`monai_dml.utils.temper_probabilities`, as in
    :py:class:`monai_dml.transforms.TeacherTarget` and ``KDLoss``.

    Guo, C. et. al. (2017) On Calibration of Modern Neural Networks. ICML 2017.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> p = torch.rand(1, 1, 20000, generator=g)  # true foreground probability
        >>> y = torch.bernoulli(p, generator=g)
        >>> sharp = p**3 / (p**3 + (1 - p) ** 3)  # over-confident: true logits times 3
        >>> ts = TemperatureScaling().fit(sharp, y)
        >>> round(ts.temperature, 1)
        3.0
    """

    def __init__(
        self, max_fit_voxels: int | None = 200_000, seed: int = 0, bounds: tuple[float, float] = (0.05, 20.0)
    ) -> None:
        """
        Args:
            max_fit_voxels: :py:meth:`fit` draws at most this many voxels, uniformly over all cases; None uses all.
                One parameter is well determined by far fewer; each NLL evaluation is linear in this number.
                Defaults to 200,000.
            seed: seed of that draw. Defaults to 0.
            bounds: the search interval ``(T_min, T_max)``; a warning tells when the optimum is on it.
                Defaults to (0.05, 20).

        Raises:
            ValueError: for ``max_fit_voxels < 1`` or bounds that are not ``0 < T_min < T_max < inf``.
        """
        super().__init__()
        _check_max_voxels(max_fit_voxels)
        lo, hi = (float(b) for b in bounds)
        if not 0 < lo < hi < math.inf:
            raise ValueError(f"bounds must satisfy 0 < T_min < T_max < inf, got {tuple(bounds)}.")
        self.max_fit_voxels = max_fit_voxels
        self.seed = seed
        self.bounds = (lo, hi)
        self.temperature: float | None = None

    def fit(self, y_pred: torch.Tensor, y: torch.Tensor, logits: bool = False) -> TemperatureScaling:
        """
        Fit ``T`` on held-out predictions.

        Probabilities are floored at the machine epsilon of their dtype (``1.2e-7`` for float32) before the log: a
        probability that saturated to 0 or 1 (a float32 sigmoid beyond a logit of about 16.6) is read at that
        resolution limit rather than as ``log 0``, which would dominate the NLL. Logits need no floor; fit on them
        when you have them. (Applying ``T`` keeps exact zeros at zero, as ``temper_probabilities`` does.)

        Args:
            y_pred: ``(B, C, spatial...)`` probabilities (channels summing to 1, or one foreground channel), or
                logits with ``logits=True`` (one channel: the sigmoid logit).
            y: labels, same shape, in [0, 1] (one-hot or soft; soft labels give the cross-entropy).
            logits: ``y_pred`` holds logits. Defaults to False.

        Returns:
            ``self``, with ``temperature`` set.

        Raises:
            ValueError: for mismatched shapes, invalid probabilities or labels, or non-finite logits.
        """
        if logits:
            if y_pred.shape != y.shape or y_pred.ndim < 3:
                raise ValueError(
                    f"y_pred and y must have the same shape (B, C, spatial...), got {tuple(y_pred.shape)} and "
                    f"{tuple(y.shape)}."
                )
            if not bool(torch.isfinite(y_pred).all()):
                raise ValueError("y_pred (logits) contains NaN or Inf values.")
            check_soft_target(y, "y")
        else:
            self._check_fit_inputs(y_pred, y)
        f, t = _voxel_rows(y_pred, y, self.max_fit_voxels, self.seed)
        binary = f.shape[1] == 1
        if binary:
            t = torch.cat([1 - t, t], dim=1)
        if logits:
            scores = torch.cat([torch.zeros_like(f), f], dim=1) if binary else f
        else:
            floor = torch.finfo(y_pred.dtype if y_pred.is_floating_point() else torch.float32).eps
            scores = (torch.cat([1 - f, f], dim=1) if binary else f).clamp_min(floor).log()

        def nll(log_t: float) -> float:
            return float(-(t * torch.log_softmax(scores / math.exp(log_t), dim=1)).sum(dim=1).mean())

        lo, hi = math.log(self.bounds[0]), math.log(self.bounds[1])
        result = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
        log_t = float(result.x)
        if min(log_t - lo, hi - log_t) < 1e-3:
            warnings.warn(
                f"the fitted temperature {math.exp(log_t):.4g} is at the edge of bounds={self.bounds}.", stacklevel=2
            )
        self.temperature = math.exp(log_t)
        self.num_channels = y_pred.shape[1]
        return self

    def _calibrate(self, probs: torch.Tensor) -> torch.Tensor:
        if self.temperature is None:
            raise RuntimeError("TemperatureScaling must be fitted before it is called: call fit() first.")
        return temper_probabilities(probs, self.temperature, dim=0).to(torch.float64)


class KDECalibrator(PosthocCalibrator):
    """
    Calibration by the kernel estimate of the calibration map: each probability vector ``p`` becomes

    .. math::

        q(p) = \\widehat{\\mathbb{E}}[y \\mid f(x) = p] = \\frac{\\sum_i \\mathrm{Dir}(p; f_i / h + 1)\\, y_i}
        {\\sum_i \\mathrm{Dir}(p; f_i / h + 1)},

    the Nadaraya-Watson regression of :py:func:`monai_dml.metrics.kde_conditional_expectation` on held-out pairs
    ``(f_i, y_i)``, renormalised to sum 1 over the classes. Wang et al. (2023) use it instead of temperature scaling
    to calibrate the teacher; unlike a temperature it can also fix a calibration curve that is not a power of ``p``.

    :py:meth:`fit` keeps ``max_fit_voxels`` voxels drawn uniformly over all cases. Calling costs
    ``O(n_voxels * max_fit_voxels * C)`` time, in blocks of bounded memory: with 2000 fitting voxels about 5 s per
    10^5 voxels on two CPU cores (a 256 x 256 slice in about 3 s, a 128^3 volume in about 2 minutes).

    Popordanoska, T. et. al. (2022) A Consistent and Differentiable Lp Canonical Calibration Error Estimator.
    NeurIPS 2022.

    Wang, Z. et. al. (2023) Dice Semimetric Losses: Optimizing the Dice Score with Soft Labels. MICCAI 2023.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> p = torch.rand(1, 1, 5000, generator=g)
        >>> y = torch.bernoulli(p * p, generator=g)  # the model says p, the truth is p^2
        >>> kde = KDECalibrator().fit(p, y)
        >>> q = kde(torch.tensor([[[0.5]]]), batched=True)
        >>> bool(abs(q - 0.25) < 0.05)
        True
    """

    def __init__(
        self,
        bandwidth: float = DEFAULT_BANDWIDTH,
        max_fit_voxels: int | None = 2000,
        seed: int = 0,
        kernel: KDEKernel | str = KDEKernel.AUTO,
    ) -> None:
        """
        Args:
            bandwidth: kernel bandwidth ``h > 0``. Defaults to 0.02.
            max_fit_voxels: the number of held-out voxels kept by :py:meth:`fit`; None keeps all. Defaults to 2000.
            seed: seed of that draw. Defaults to 0.
            kernel: {``"auto"``, ``"beta"``, ``"dirichlet"``}, see
                :py:func:`monai_dml.metrics.kde_conditional_expectation`. Defaults to ``"auto"``.

        Raises:
            ValueError: for an invalid ``bandwidth`` or ``kernel``, or ``max_fit_voxels < 1``.
        """
        super().__init__()
        _check_max_voxels(max_fit_voxels)
        self.bandwidth = _check_bandwidth(bandwidth)
        self.kernel = look_up_option(kernel, KDEKernel, "kernel")
        self.max_fit_voxels = max_fit_voxels
        self.seed = seed
        self.fit_probs: torch.Tensor | None = None
        self.fit_labels: torch.Tensor | None = None

    def fit(self, y_pred: torch.Tensor, y: torch.Tensor) -> KDECalibrator:
        """
        Keep a uniform sample of held-out ``(probability, label)`` pairs.

        Args:
            y_pred: ``(B, C, spatial...)`` probabilities (channels summing to 1, or one foreground channel).
            y: labels, same shape, in [0, 1] (one-hot or soft).

        Returns:
            ``self``, with ``fit_probs`` and ``fit_labels`` (float64 ``(n, C)``) set.

        Raises:
            ValueError: for mismatched shapes or invalid probabilities or labels.
        """
        self._check_fit_inputs(y_pred, y)
        self.fit_probs, self.fit_labels = _voxel_rows(y_pred, y, self.max_fit_voxels, self.seed)
        self.num_channels = y_pred.shape[1]
        return self

    def _calibrate(self, probs: torch.Tensor) -> torch.Tensor:
        if self.fit_probs is None or self.fit_labels is None:
            raise RuntimeError("KDECalibrator must be fitted before it is called: call fit() first.")
        rows = probs.reshape(probs.shape[0], -1).T
        fit_probs, fit_labels = self.fit_probs.to(rows.device), self.fit_labels.to(rows.device)
        estimate = kde_conditional_expectation(rows, fit_probs, fit_labels, self.bandwidth, self.kernel)
        estimate = estimate.clamp(0, 1)
        if estimate.shape[1] > 1:
            total = estimate.sum(dim=1, keepdim=True)
            estimate = torch.where(total > 0, estimate / total.clamp_min(torch.finfo(torch.float64).tiny), rows)
        return estimate.T.reshape(probs.shape)


def calibration_report(
    calibrator: PosthocCalibrator,
    probs: torch.Tensor,
    labels: torch.Tensor,
    num_bins: int = 10,
    mode: ECEMode | str = ECEMode.TOP_LABEL,
) -> dict[str, float]:
    """
    The binned ECE (:py:func:`monai_dml.metrics.compute_ece`) of a data set before and after a fitted calibrator.

    Args:
        calibrator: a fitted :py:class:`PosthocCalibrator`.
        probs: ``(B, C, spatial...)`` probabilities, preferably not those the calibrator was fitted on.
        labels: reference, same shape (one-hot or soft).
        num_bins: the number of bins. Defaults to 10.
        mode: {``"top_label"``, ``"classwise"``}; classwise values are averaged over the classes.
            Defaults to ``"top_label"``.

    Returns:
        ``{"ece_before", "ece_after"}``: the ECE of all voxels pooled (the data set ECE), and
        ``{"case_ece_before", "case_ece_after"}``: the mean of the per-case ECEs; fractions in [0, 1].

    Raises:
        ValueError: for invalid inputs (see :py:func:`monai_dml.metrics.compute_ece`).
        RuntimeError: when the calibrator was not fitted.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> p = torch.rand(2, 1, 20000, generator=g)
        >>> y = torch.bernoulli(p, generator=g)
        >>> sharp = p**3 / (p**3 + (1 - p) ** 3)
        >>> report = calibration_report(TemperatureScaling().fit(sharp[:1], y[:1]), sharp[1:], y[1:])
        >>> report["ece_after"] < 0.2 * report["ece_before"]
        True
    """
    probs = convert_to_tensor(probs, track_meta=False)
    calibrated = convert_to_tensor(calibrator(probs, batched=True), track_meta=False)
    report: dict[str, float] = {}
    for name, pred in (("before", probs), ("after", calibrated)):
        sums = calibration_bin_sums(pred, labels, num_bins, mode)
        report[f"ece_{name}"] = float(ece_from_bin_sums(*(s.sum(dim=0) for s in sums)).nanmean())
        report[f"case_ece_{name}"] = float(ece_from_bin_sums(*sums).nanmean())
    return report
