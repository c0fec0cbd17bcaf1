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
Soft-label transforms in MONAI's array/dictionary style: rater fusion, label smoothing, teacher targets, and the
data-layout transforms that bring the data sets' stored forms to channel-first arrays.
"""

from __future__ import annotations

# defined in monai_dml.utils (shared below transforms); importable from here as documented
from monai_dml.utils import check_probability_map, estimate_epsilon_from_datalist

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
from .layout import (
    KITS_LABELS,
    ExtractSlice,
    ExtractSliceD,
    ExtractSliced,
    ExtractSliceDict,
    KiTSAnnotations,
    KiTSAnnotationsD,
    KiTSAnnotationsd,
    KiTSAnnotationsDict,
    PlanarChannels,
    PlanarChannelsD,
    PlanarChannelsd,
    PlanarChannelsDict,
)
from .smoothing import LabelSmoothing, LabelSmoothingD, LabelSmoothingd, LabelSmoothingDict, LabelSmoothingMethod
from .teacher import TeacherTarget, TeacherTargetD, TeacherTargetd, TeacherTargetDict

__all__ = [
    "KITS_LABELS",
    "ExtractSlice",
    "ExtractSliceD",
    "ExtractSliceDict",
    "ExtractSliced",
    "FusionMethod",
    "KiTSAnnotations",
    "KiTSAnnotationsD",
    "KiTSAnnotationsDict",
    "KiTSAnnotationsd",
    "LabelSmoothing",
    "LabelSmoothingD",
    "LabelSmoothingDict",
    "LabelSmoothingMethod",
    "LabelSmoothingd",
    "LoadRaters",
    "LoadRatersD",
    "LoadRatersDict",
    "LoadRatersd",
    "PlanarChannels",
    "PlanarChannelsD",
    "PlanarChannelsDict",
    "PlanarChannelsd",
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
