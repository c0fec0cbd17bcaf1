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
Shared pieces of the bundles in ``bundles/``: the data facts of each layout (:py:class:`QubiqData`,
:py:class:`CTData`: data set, folds, synthetic generation), the label-mode table (:py:data:`LABEL_RECIPES`, reached
by :py:func:`label_targets`), and small helpers of the configs. Transforms, losses, metrics and handlers are
components of the configs themselves.
"""

from __future__ import annotations

from . import distributed
from .ct import CTData
from .data import BundleData, positive_int
from .outputs import case_formatter, case_id, image_meta, report_metrics
from .qubiq import QUBIQ_TASKS, QubiqData
from .recipes import (
    LABEL_RECIPES,
    LabelMode,
    LabelRecipe,
    LabelTargetsd,
    PrepareBatchTeacher,
    RandLabelTargetsd,
    check_recipe,
    label_recipe,
    label_targets,
)
from .utils import (
    as_bool,
    check_fold,
    check_option,
    extend_schedule,
    inference_data,
    require_checkpoint,
    resume_from,
)

__all__ = [
    "LABEL_RECIPES",
    "QUBIQ_TASKS",
    "BundleData",
    "CTData",
    "LabelMode",
    "LabelRecipe",
    "LabelTargetsd",
    "PrepareBatchTeacher",
    "QubiqData",
    "RandLabelTargetsd",
    "as_bool",
    "case_formatter",
    "case_id",
    "distributed",
    "check_fold",
    "check_option",
    "check_recipe",
    "extend_schedule",
    "image_meta",
    "inference_data",
    "label_recipe",
    "label_targets",
    "positive_int",
    "report_metrics",
    "require_checkpoint",
    "resume_from",
]
