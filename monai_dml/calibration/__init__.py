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
"""Post-hoc calibration of probability maps: temperature scaling and the Dirichlet-kernel (KDE) calibrator."""

from __future__ import annotations

from .posthoc import KDECalibrator, PosthocCalibrator, TemperatureScaling, calibration_report
from .teacher import CalibrationMethod, CalibrationSampler, calibrated, calibrator_by_name

__all__ = [
    "CalibrationMethod",
    "CalibrationSampler",
    "KDECalibrator",
    "PosthocCalibrator",
    "TemperatureScaling",
    "calibrated",
    "calibration_report",
    "calibrator_by_name",
]
