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
"""Soft-label transforms in MONAI's array/dictionary style: rater fusion, label smoothing, teacher targets."""

from __future__ import annotations

from .fusion import (
    FusionMethod,
    RandRaterFusion,
    RandRaterFusionD,
    RandRaterFusiond,
    RandRaterFusionDict,
    RaterFusion,
    RaterFusionD,
    RaterFusiond,
    RaterFusionDict,
    StapleResult,
    majority_vote,
    rater_dice_to_majority,
    stack_to_probabilities,
    staple_binary,
    staple_multiclass,
)
from .io import LoadRaters, LoadRatersD, LoadRatersd, LoadRatersDict
from .smoothing import LabelSmoothing, LabelSmoothingD, LabelSmoothingd, LabelSmoothingDict, LabelSmoothingMethod
from .statistics import estimate_epsilon_from_datalist
from .teacher import TeacherTarget, TeacherTargetD, TeacherTargetd, TeacherTargetDict, check_probability_map

__all__ = [
    "FusionMethod",
    "LabelSmoothing",
    "LabelSmoothingD",
    "LabelSmoothingDict",
    "LabelSmoothingMethod",
    "LabelSmoothingd",
    "LoadRaters",
    "LoadRatersD",
    "LoadRatersDict",
    "LoadRatersd",
    "RandRaterFusion",
    "RandRaterFusionD",
    "RandRaterFusionDict",
    "RandRaterFusiond",
    "RaterFusion",
    "RaterFusionD",
    "RaterFusionDict",
    "RaterFusiond",
    "StapleResult",
    "TeacherTarget",
    "TeacherTargetD",
    "TeacherTargetDict",
    "TeacherTargetd",
    "check_probability_map",
    "estimate_epsilon_from_datalist",
    "majority_vote",
    "rater_dice_to_majority",
    "stack_to_probabilities",
    "staple_binary",
    "staple_multiclass",
]
