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
"""Reading what a written PNG shows: the area of a colour, and the colours of matplotlib's colour maps."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.image import imread

matplotlib.use("Agg")


def read_rgb(path: str) -> np.ndarray:
    """The PNG at ``path`` as ``(H, W, 3)`` floats in [0, 1]."""
    return np.asarray(imread(path))[..., :3]


def colour_mask(rgb: np.ndarray, colour, tol: float = 2 / 255) -> np.ndarray:
    """Where ``rgb`` is within ``tol`` of ``colour`` (an RGB(A) tuple) in every channel."""
    return np.abs(rgb - np.asarray(colour, dtype=np.float64)[:3]).max(axis=-1) <= tol + 1e-6


def colour_area(rgb: np.ndarray, colour, tol: float = 2 / 255) -> int:
    """How many pixels of ``rgb`` show ``colour``."""
    return int(colour_mask(rgb, colour, tol).sum())


def viridis(value: float) -> tuple[float, ...]:
    """The colour ``imshow(..., cmap="viridis", vmin=0, vmax=1)`` gives ``value``."""
    return tuple(matplotlib.colormaps["viridis"](value))
