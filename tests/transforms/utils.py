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
"""Helpers shared by the transform tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def ndarray_converters(as_meta: Callable[[Any], Any]) -> list[Callable[[Any], Any]]:
    """
    The input converters of a transform test, as MONAI's ``TEST_NDARRAYS``: NumPy, torch, ``as_meta`` (the test's
    MetaTensor with its affine and metadata) and, where available, CUDA.
    """
    converters = [np.asarray, torch.as_tensor, as_meta]
    if torch.cuda.is_available():
        converters.append(lambda x: torch.as_tensor(x, device="cuda"))
    return converters


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of a transform's output, whatever its type or device."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
