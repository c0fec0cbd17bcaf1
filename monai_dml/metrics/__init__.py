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
"""Metrics for soft labels."""

from __future__ import annotations

from .base import ReducedIterationMetric, check_metric_inputs
from .calibration import ECEMetric, ECEMode, calibration_bin_sums, compute_ece, ece_from_bin_sums
from .dice import (
    QUBIQ_THRESHOLDS,
    BinarizedDiceMetric,
    SoftDiceMetric,
    compute_binarized_dice,
    compute_soft_dice,
    soft_dice_unchecked,
)
from .kde import (
    KDECalibrationErrorMetric,
    KDEKernel,
    compute_kde_calibration_error,
    dirichlet_log_kernel,
    kde_conditional_expectation,
)
from .volume import VolumeBiasMetric, VolumeMode, compute_volume_bias

__all__ = [
    "QUBIQ_THRESHOLDS",
    "BinarizedDiceMetric",
    "ECEMetric",
    "ECEMode",
    "KDECalibrationErrorMetric",
    "KDEKernel",
    "ReducedIterationMetric",
    "SoftDiceMetric",
    "VolumeBiasMetric",
    "VolumeMode",
    "calibration_bin_sums",
    "check_metric_inputs",
    "compute_ece",
    "compute_kde_calibration_error",
    "dirichlet_log_kernel",
    "ece_from_bin_sums",
    "kde_conditional_expectation",
    "compute_binarized_dice",
    "compute_soft_dice",
    "compute_volume_bias",
    "soft_dice_unchecked",
]
