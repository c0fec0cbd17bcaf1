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
"""
Shared pieces of the bundles in ``bundles/``: one :py:class:`Experiment` per bundle holds the data set, the label-mode
switch, transform chains, loss, inferers and metrics, so that the bundle configs only name data facts.
"""

from __future__ import annotations

from . import distributed
from .experiment import CTExperiment, Experiment, LabelMode, QubiqExperiment, case_id
from .utils import (
    PackedKDLoss,
    as_bool,
    check_fold,
    check_option,
    inference_data,
    report_metrics,
    require_checkpoint,
    resume_from,
)

__all__ = [
    "CTExperiment",
    "Experiment",
    "LabelMode",
    "PackedKDLoss",
    "as_bool",
    "QubiqExperiment",
    "case_id",
    "distributed",
    "check_fold",
    "check_option",
    "inference_data",
    "report_metrics",
    "require_checkpoint",
    "resume_from",
]
