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

from __future__ import annotations

from .array import (
    FusionMethod,
    RandRaterFusion,
    RaterFusion,
    majority_vote,
    rater_dice_to_majority,
    stack_to_probabilities,
)
from .dictionary import (
    RandRaterFusionD,
    RandRaterFusiond,
    RandRaterFusionDict,
    RaterFusionD,
    RaterFusiond,
    RaterFusionDict,
)
from .staple import StapleResult, staple_binary, staple_multiclass

__all__ = [
    "FusionMethod",
    "RandRaterFusion",
    "RandRaterFusionD",
    "RandRaterFusionDict",
    "RandRaterFusiond",
    "RaterFusion",
    "RaterFusionD",
    "RaterFusionDict",
    "RaterFusiond",
    "StapleResult",
    "majority_vote",
    "rater_dice_to_majority",
    "stack_to_probabilities",
    "staple_binary",
    "staple_multiclass",
]
