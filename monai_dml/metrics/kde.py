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
"""Kernel estimates of ``E[y | f(x)]`` on the probability simplex and the KDE canonical calibration error.

Popordanoska, T. et. al. (2022) A Consistent and Differentiable Lp Canonical Calibration Error Estimator.
NeurIPS 2022.

A prediction ``f(x)`` lies on the simplex of ``K`` classes. The conditional expectation of the (one-hot or soft)
label given the prediction is estimated by Nadaraya-Watson regression with a Dirichlet kernel whose concentration
comes from the fitting point:

.. math::

    \\widehat{\\mathbb{E}}[y \\mid f(x) = z] = \\frac{\\sum_i k(z; f_i)\\, y_i}{\\sum_i k(z; f_i)},\\qquad
    k(z; f_i) = \\mathrm{Dir}\\!\\left(z;\\ \\alpha_i = \\frac{f_i}{h} + 1\\right)
    = \\frac{\\Gamma(\\sum_k \\alpha_{ik})}{\\prod_k \\Gamma(\\alpha_{ik})} \\prod_k z_k^{\\alpha_{ik} - 1},

with bandwidth ``h > 0``. For two classes this is the Beta kernel
``Beta(z; f_i / h + 1, (1 - f_i) / h + 1)`` on the foreground probability. The canonical ``L_p`` calibration error
``CE_p(f)^p = E[ || E[y | f(x)] - f(x) ||_p^p ]`` is estimated by the leave-one-out average (the paper's
``ECE^KDE``)

.. math::

    \\widehat{\\mathrm{CE}}_p^p = \\frac{1}{n} \\sum_{j=1}^{n}
    \\left\\| \\frac{\\sum_{i \\neq j} k(f_j; f_i)\\, y_i}{\\sum_{i \\neq j} k(f_j; f_i)} - f_j \\right\\|_p^p.

Wang et al. (2023) calibrate the teacher with this estimate of ``E[y | f(x)]`` before distillation
(:py:class:`monai_dml.calibration.KDECalibrator`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from monai.utils import MetricReduction, StrEnum

from monai_dml.metrics.base import ReducedIterationMetric, check_metric_inputs
from monai_dml.utils import (
    check_channel_sums,
    check_probability_map,
    check_soft_target,
    look_up_option,
    one_hot_label_map,
)

__all__ = [
    "KDEKernel",
    "KDECalibrationErrorMetric",
    "compute_kde_calibration_error",
    "dirichlet_log_kernel",
    "kde_conditional_expectation",
]

#: Default bandwidth of the Dirichlet/Beta kernel.
DEFAULT_BANDWIDTH = 0.02

#: Rows of the ``(eval, fit)`` kernel matrix are computed in blocks of at most this many entries (32 MiB in float64).
_BLOCK_ENTRIES = 1 << 22


class KDEKernel(StrEnum):
    """
    The kernel on the probability simplex.

    - ``AUTO``: Beta for one or two classes, Dirichlet for more.
    - ``BETA``: the Beta kernel on the foreground probability (one or two classes only).
    - ``DIRICHLET``: the Dirichlet kernel; for two classes it equals the Beta kernel.
    """

    AUTO = "auto"
    BETA = "beta"
    DIRICHLET = "dirichlet"


def _check_bandwidth(bandwidth: float) -> float:
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)) or not 0 < bandwidth < math.inf:
        raise ValueError(f"bandwidth must be a finite number > 0, got {bandwidth!r}.")
    return float(bandwidth)


def _to_simplex(probs: torch.Tensor) -> torch.Tensor:
    """``(N, K)`` -> ``(N, K)``, or ``(N, 1)`` foreground probabilities -> ``(N, 2)`` as ``[1 - p, p]``."""
    return torch.cat([1 - probs, probs], dim=1) if probs.shape[1] == 1 else probs


def _label_rows(labels: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """``(N, K)`` labels in [0, 1], or ``(N,)`` class indices (0/1 foreground labels for ``K = 1``), as float64 rows."""
    if labels.ndim == 1:
        if labels.shape[0] != n:
            raise ValueError(f"labels_fit must have {n} entries (one per fitting point), got {labels.shape[0]}.")
        # class indices: 0/1 foreground labels for K = 1, else one of K classes
        onehot = one_hot_label_map(labels.unsqueeze(1), max(k, 2), "labels_fit", dim=1, dtype=torch.float64)
        return onehot[:, 1:] if k == 1 else onehot
    if labels.shape != (n, k):
        raise ValueError(f"labels_fit must have shape (N,) or ({n}, {k}) like probs_fit, got {tuple(labels.shape)}.")
    labels = labels.to(torch.float64)
    check_soft_target(labels, "labels_fit")
    return labels


def _fit_terms(probs_fit: torch.Tensor, bandwidth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alpha - 1).T`` as ``(K', N)`` and ``-log B(alpha)`` as ``(N,)`` of the fitting points, float64."""
    fit = _to_simplex(probs_fit.to(torch.float64))
    scaled = fit / bandwidth
    log_beta = torch.lgamma(scaled + 1).sum(dim=1) - torch.lgamma(scaled.sum(dim=1) + fit.shape[1])
    return scaled.T.contiguous(), -log_beta


def _log_z(probs_eval: torch.Tensor) -> torch.Tensor:
    return _to_simplex(probs_eval.to(torch.float64)).clamp_min(torch.finfo(torch.float64).tiny).log()


def dirichlet_log_kernel(probs_eval: torch.Tensor, probs_fit: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """
    Log Dirichlet kernel ``log Dir(z_j; alpha_i = f_i / h + 1)`` for every evaluation point ``z_j`` and fitting point
    ``f_i`` (inputs not checked; see :py:func:`kde_conditional_expectation`).

    .. math::

        \\log k(z; f_i) = \\sum_k \\frac{f_{ik}}{h} \\log z_k - \\log \\mathrm{B}(\\alpha_i),\\qquad
        \\log \\mathrm{B}(\\alpha) = \\sum_k \\log\\Gamma(\\alpha_k) - \\log\\Gamma\\Big(\\sum_k \\alpha_k\\Big).

    ``log z`` is floored at the smallest positive float64, so a vertex of the simplex gets the limit value (0 weight
    from every fitting point with ``f_ik > 0`` where ``z_k = 0``) instead of NaN.

    Args:
        probs_eval: ``(M, K)`` evaluation points; ``K = 1`` is a foreground probability (Beta kernel).
        probs_fit: ``(N, K)`` fitting points.
        bandwidth: ``h > 0``.

    Returns:
        float64 ``(M, N)``.
    """
    scaled_t, neg_log_beta = _fit_terms(probs_fit, bandwidth)
    return torch.addmm(neg_log_beta, _log_z(probs_eval), scaled_t)


def kde_conditional_expectation(
    probs_eval: torch.Tensor,
    probs_fit: torch.Tensor,
    labels_fit: torch.Tensor,
    bandwidth: float = DEFAULT_BANDWIDTH,
    kernel: KDEKernel | str = KDEKernel.AUTO,
    leave_one_out: bool = False,
) -> torch.Tensor:
    """
    Nadaraya-Watson estimate of ``E[y | f(x) = z]`` at evaluation points ``z`` from fitting pairs ``(f_i, y_i)``,
    with the Dirichlet (Beta for binary) kernel ``k(z; f_i) = Dir(z; f_i / h + 1)`` of Popordanoska et al. (2022).

    .. math::

        \\widehat{\\mathbb{E}}[y \\mid f(x) = z_j] = \\frac{\\sum_{i} k(z_j; f_i)\\, y_i}{\\sum_{i} k(z_j; f_i)}

    Computed in float64 and in log space (the weights are a softmax of the log kernel over ``i``), in blocks of rows
    so that memory stays bounded (about 32 MiB per block) whatever the number of points; time is ``O(M N K)``.

    Popordanoska, T. et. al. (2022) A Consistent and Differentiable Lp Canonical Calibration Error Estimator.
    NeurIPS 2022.

    Args:
        probs_eval: ``(M, K)`` probability vectors where the estimate is wanted. ``K = 1`` means a binary
            foreground probability ``p`` (the classes ``[1 - p, p]``); for ``K > 1`` rows sum to 1.
        probs_fit: ``(N, K)`` predicted probabilities of the fitting points.
        labels_fit: ``(N, K)`` labels of the fitting points in [0, 1] (one-hot or soft; for ``K = 1`` the
            foreground label), or ``(N,)`` integer class indices (0/1 for ``K = 1``).
        bandwidth: the kernel bandwidth ``h > 0``; smaller is less smooth. Defaults to 0.02.
        kernel: {``"auto"``, ``"beta"``, ``"dirichlet"``}. The Beta kernel is the Dirichlet kernel of two classes,
            so this only checks that ``"beta"`` gets at most two classes. Defaults to ``"auto"``.
        leave_one_out: the evaluation points are the fitting points (``M = N``, same order): leave each point's own
            pair out of its estimate, as the calibration error estimator does. Defaults to False.

    Returns:
        float64 ``(M, K)``: for ``K = 1`` the estimated foreground frequency, otherwise the estimated class
        frequencies (rows sum to 1 when the labels do). NaN rows where no fitting point is left (``N = 0``, or
        ``N = 1`` with ``leave_one_out``).

    Raises:
        ValueError: for a ``bandwidth`` that is not a finite number > 0, an unknown ``kernel`` or ``"beta"`` with
            more than two classes, shapes that do not match, values outside [0, 1] or NaN/Inf, rows of ``K > 1``
            classes that do not sum to 1, or ``leave_one_out`` with ``M != N``.

    Example:
        >>> import torch
        >>> f = torch.tensor([[0.2], [0.25], [0.8], [0.85]])
        >>> y = torch.tensor([0, 1, 1, 1])
        >>> kde_conditional_expectation(torch.tensor([[0.2], [0.8]]), f, y, bandwidth=0.05)  # 0.2 mixes 0 and 1
        tensor([[0.4444],
                [1.0000]], dtype=torch.float64)
    """
    h = _check_bandwidth(bandwidth)
    kernel = look_up_option(kernel, KDEKernel, "kernel")
    for probs, name in ((probs_fit, "probs_fit"), (probs_eval, "probs_eval")):
        if probs.ndim != 2 or probs.shape[1] < 1:
            raise ValueError(f"{name} must have shape (N, K), got {tuple(probs.shape)}.")
    n, k = probs_fit.shape
    m = probs_eval.shape[0]
    if probs_eval.shape[1] != k:
        raise ValueError(
            f"probs_eval and probs_fit must have the same number of classes, got {tuple(probs_eval.shape)} and "
            f"{tuple(probs_fit.shape)}."
        )
    check_probability_map(probs_fit, "probs_fit", dim=1)
    check_probability_map(probs_eval, "probs_eval", dim=1)
    if kernel == KDEKernel.BETA and k > 2:
        raise ValueError(f"kernel='beta' needs one or two classes, got {k}; use 'dirichlet'.")
    if leave_one_out and m != n:
        raise ValueError(f"leave_one_out needs the fitting points as evaluation points, got M={m} and N={n}.")
    labels = _label_rows(labels_fit.to(probs_fit.device), n, k)
    out = torch.full((m, k), float("nan"), dtype=torch.float64, device=probs_eval.device)
    if n == 0 or m == 0:
        return out
    scaled_t, neg_log_beta = _fit_terms(probs_fit, h)
    labels_and_one = torch.cat([labels, torch.ones_like(labels[:, :1])], dim=1)  # numerator and denominator at once
    block = max(1, _BLOCK_ENTRIES // n)
    for start in range(0, m, block):
        stop = min(start + block, m)
        weights = torch.addmm(neg_log_beta, _log_z(probs_eval[start:stop]), scaled_t)  # log kernel, (block, N)
        if leave_one_out:
            rows = torch.arange(stop - start, device=weights.device)
            weights[rows, rows + start] = -math.inf
        weights.sub_(weights.amax(dim=1, keepdim=True)).exp_()  # softmax numerator, in place
        sums = weights @ labels_and_one
        out[start:stop] = sums[:, :k] / sums[:, k:]
    return out


def _check_power(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 1 <= p < math.inf:
        raise ValueError(f"p must be a finite number >= 1, got {p!r}.")
    return float(p)


def _check_max_voxels(max_voxels: int | None) -> None:
    if max_voxels is not None and (isinstance(max_voxels, bool) or not isinstance(max_voxels, int) or max_voxels < 2):
        raise ValueError(f"max_voxels must be an integer >= 2 or None, got {max_voxels!r}.")


def compute_kde_calibration_error(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    bandwidth: float = DEFAULT_BANDWIDTH,
    p: float = 1,
    max_voxels: int | None = 2000,
    seed: int = 0,
    kernel: KDEKernel | str = KDEKernel.AUTO,
) -> torch.Tensor:
    """
    The KDE estimate of the canonical ``L_p`` calibration error of each case (Popordanoska et al. 2022):

    .. math::

        \\widehat{\\mathrm{CE}}_p^p = \\frac{1}{n} \\sum_{j=1}^{n}
        \\left\\| \\widehat{\\mathbb{E}}_{-j}[y \\mid f(x) = f_j] - f_j \\right\\|_p^p

    over ``n`` voxels drawn uniformly without replacement from the case (all voxels if there are at most
    ``max_voxels``), where ``E_{-j}`` is the leave-one-out estimate of :py:func:`kde_conditional_expectation` fitted
    on the same voxels. This is the paper's ``ECE^KDE``, an estimate of ``CE_p^p``: take the ``p``-th root for
    ``CE_p`` (the same for ``p = 1``). The norm runs over all classes of the simplex: a single foreground channel
    ``p`` counts as ``[1 - p, p]``, so it gives the same value as the two-channel map, twice the foreground
    difference for ``p = 1`` (like the reference implementation).

    Subsampling makes the cost ``O(n^2 K)`` per case whatever the volume size, and the value deterministic given
    ``seed`` (one generator seeded once per call draws the voxels of the cases in order).

    Args:
        y_pred: probabilities, shape ``(B, C, spatial...)``; ``C = 1`` is a binary foreground probability,
            otherwise the channels sum to 1.
        y: reference, same shape, values in [0, 1] (one-hot or soft).
        bandwidth: kernel bandwidth ``h > 0``. Defaults to 0.02.
        p: the norm, ``p >= 1``. Defaults to 1.
        max_voxels: voxels drawn per case, at least 2; None uses every voxel (quadratic cost). Defaults to 2000.
        seed: seed of the voxel sampling. Defaults to 0.
        kernel: {``"auto"``, ``"beta"``, ``"dirichlet"``}, see :py:func:`kde_conditional_expectation`.

    Returns:
        float32 (float64 for a float64 ``y_pred``) tensor ``(B, 1)``; NaN for a case with fewer than 2 voxels.

    Raises:
        ValueError: for mismatched shapes, values outside [0, 1] or NaN/Inf, channels that do not sum to 1, or an
            invalid ``bandwidth``, ``p``, ``max_voxels`` or ``kernel``.

    Example:
        >>> import torch
        >>> f = torch.rand(1, 1, 4000, generator=torch.Generator().manual_seed(0))
        >>> y = torch.bernoulli(f * f, generator=torch.Generator().manual_seed(1))  # E[y | f] = f^2
        >>> ce = compute_kde_calibration_error(f, y, bandwidth=0.02)  # about 2 * E|f^2 - f| = 1/3
        >>> bool(abs(ce - 1 / 3) < 0.05)
        True
    """
    h = _check_bandwidth(bandwidth)
    power = _check_power(p)
    _check_max_voxels(max_voxels)
    kernel = look_up_option(kernel, KDEKernel, "kernel")
    check_metric_inputs(y_pred, y)
    check_channel_sums(y_pred, "y_pred", dim=1)
    batch, channels = y_pred.shape[:2]
    generator = torch.Generator().manual_seed(seed)
    out = torch.full((batch, 1), float("nan"), dtype=torch.float64, device=y_pred.device)
    for b in range(batch):
        f_case = y_pred[b].reshape(channels, -1)
        y_case = y[b].reshape(channels, -1)
        n = f_case.shape[1]
        if n < 2:
            continue
        if max_voxels is not None and n > max_voxels:
            index = torch.randperm(n, generator=generator)[:max_voxels].to(y_pred.device)
            f_case, y_case = f_case[:, index], y_case[:, index]
        f_rows, y_rows = f_case.T.to(torch.float64), y_case.T.to(torch.float64)
        estimate = kde_conditional_expectation(f_rows, f_rows, y_rows, h, kernel, leave_one_out=True)
        gap = (_to_simplex(estimate) - _to_simplex(f_rows)).abs().pow(power).sum(dim=1)
        out[b, 0] = gap.mean()
    return out.to(torch.float64 if y_pred.dtype == torch.float64 else torch.float32)


class KDECalibrationErrorMetric(ReducedIterationMetric):
    """
    The KDE canonical calibration error (:py:func:`compute_kde_calibration_error`) accumulated over iterations,
    one value per case, reduced over cases by :py:meth:`aggregate`.

    Popordanoska, T. et. al. (2022) A Consistent and Differentiable Lp Canonical Calibration Error Estimator.
    NeurIPS 2022.

    Example:
        >>> import torch
        >>> metric = KDECalibrationErrorMetric(max_voxels=500)
        >>> y = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 16, 16)), 3).permute(0, 3, 1, 2).float()
        >>> metric(0.9 * y + 0.1 / 3, y).shape  # always right, yet only 93% confident
        torch.Size([2, 1])
        >>> bool(metric.aggregate() > 0.1)
        True
    """

    def __init__(
        self,
        bandwidth: float = DEFAULT_BANDWIDTH,
        p: float = 1,
        max_voxels: int | None = 2000,
        seed: int = 0,
        kernel: KDEKernel | str = KDEKernel.AUTO,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        """
        Args:
            bandwidth: kernel bandwidth ``h > 0``. Defaults to 0.02.
            p: the norm, ``p >= 1``. Defaults to 1.
            max_voxels: voxels drawn per case (at least 2), None for all. Defaults to 2000.
            seed: seed of the voxel sampling, used afresh for every call. Defaults to 0.
            kernel: {``"auto"``, ``"beta"``, ``"dirichlet"``}. Defaults to ``"auto"``.
            reduction: MONAI's ``MetricReduction`` for :py:meth:`aggregate`. Defaults to ``"mean"``.
            get_not_nans: also return the count of non-NaN entries from :py:meth:`aggregate`. Defaults to False.

        Raises:
            ValueError: for an invalid ``bandwidth``, ``p``, ``max_voxels``, ``kernel`` or ``reduction``.
        """
        super().__init__(True, reduction, get_not_nans)
        self.bandwidth = _check_bandwidth(bandwidth)
        self.p = _check_power(p)
        _check_max_voxels(max_voxels)
        self.max_voxels = max_voxels
        self.seed = seed
        self.kernel = look_up_option(kernel, KDEKernel, "kernel")

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        if y is None:
            raise ValueError("y must be given: the calibration error needs a reference.")
        return compute_kde_calibration_error(y_pred, y, self.bandwidth, self.p, self.max_voxels, self.seed, self.kernel)
