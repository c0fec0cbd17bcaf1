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
"""Shared foundations below every other part of the package: input checks, option lookup, epsilon, tempering.

Nothing here imports from the rest of :py:mod:`monai_dml`, so losses, transforms, metrics, calibration and data can
all use it.
"""

from __future__ import annotations

from .checks import (
    SIMPLEX_TOLERANCE,
    check_channel_sums,
    check_label_map,
    check_probability_map,
    check_rater_shapes,
    check_rater_stack,
    check_soft_target,
    one_hot_label_map,
)
from .epsilon import estimate_epsilon, estimate_epsilon_from_datalist
from .options import as_bool, look_up_option
from .probabilities import temper_probabilities

__all__ = [
    "SIMPLEX_TOLERANCE",
    "as_bool",
    "check_channel_sums",
    "check_label_map",
    "check_probability_map",
    "check_rater_shapes",
    "check_rater_stack",
    "check_soft_target",
    "estimate_epsilon",
    "estimate_epsilon_from_datalist",
    "look_up_option",
    "one_hot_label_map",
    "temper_probabilities",
]
