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
"""Dice semimetric losses for soft labels (Wang et al. 2023) with Phi/epsilon reductions (Tilborghs et al. 2022)."""

from __future__ import annotations

# shared with transforms, metrics and calibration, so defined in monai_dml.utils; importable from here as documented
from monai_dml.utils import check_soft_target, estimate_epsilon, temper_probabilities

from .compound import DMLCELoss
from .dice_semimetric import DMLoss, prepare_prediction_and_target, prepare_target
from .distillation import KDLoss
from .functional import (
    ClassAverage,
    DiceDomain,
    DMLVariant,
    all_reduce_sum,
    check_finite_statistics,
    dice_semimetric_loss,
    loss_from_statistics,
    overlap_statistics,
    pool_statistics,
    statistics_from_sums,
    sums_needed,
    tversky_from_statistics,
)
from .fused import fused_overlap_sums

__all__ = [
    "ClassAverage",
    "DMLCELoss",
    "DMLoss",
    "DMLVariant",
    "DiceDomain",
    "KDLoss",
    "all_reduce_sum",
    "check_finite_statistics",
    "check_soft_target",
    "dice_semimetric_loss",
    "estimate_epsilon",
    "fused_overlap_sums",
    "loss_from_statistics",
    "overlap_statistics",
    "pool_statistics",
    "prepare_prediction_and_target",
    "prepare_target",
    "statistics_from_sums",
    "sums_needed",
    "temper_probabilities",
    "tversky_from_statistics",
]
