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
"""Knowledge-distillation targets from saved teacher probabilities."""

from __future__ import annotations

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import get_track_meta
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

from monai_dml.utils import check_probability_map, temper_probabilities

__all__ = ["TeacherTarget"]


class TeacherTarget(Transform):
    """
    Turn a teacher's probability map into a distillation target, optionally re-tempered:

    .. math::

        q_c = \\frac{p_c^{1/T}}{\\sum_k p_k^{1/T}}

    which is the softmax of the teacher's logits divided by ``T`` (``T < 1`` sharpens, ``T > 1`` softens, ``T = 1``
    keeps the map). A single channel is a binary foreground probability, re-tempered as ``[1 - p, p]`` and returned
    as one channel. Input and output are channel-first, without a batch axis.

    Hinton, G. et. al. (2015) Distilling the Knowledge in a Neural Network. NeurIPS Workshop.

    Example:
        >>> import torch
        >>> q = TeacherTarget(temperature=0.5)(torch.tensor([[[0.25, 0.5]], [[0.75, 0.5]]]))  # q = p^2 / sum p^2
        >>> q  # a MetaTensor, as MONAI's transforms return with get_track_meta()
        metatensor([[[0.1000, 0.5000]],
        <BLANKLINE>
                [[0.9000, 0.5000]]])
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, temperature: float = 1.0) -> None:
        """
        Args:
            temperature: the temperature ``T > 0``. Defaults to 1 (no change).

        Raises:
            ValueError: when ``temperature`` is not a finite number greater than 0.
        """
        if not (temperature > 0 and temperature != float("inf")):
            raise ValueError(f"temperature must be a finite number greater than 0, got {temperature}.")
        self.temperature = float(temperature)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Args:
            img: ``(C, spatial...)`` probabilities summing to 1 over channels, or ``(1, spatial...)`` foreground
                probability.

        Returns:
            float32 target of the same shape and type.

        Raises:
            ValueError: when ``img`` is not a probability map (see :py:func:`monai_dml.utils.check_probability_map`).
        """
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        probs = convert_to_tensor(img_t, track_meta=False, dtype=torch.float64)
        check_probability_map(probs, "img")
        out = temper_probabilities(probs, self.temperature, dim=0)
        dst = img if isinstance(img, np.ndarray) else img_t  # NumPy in, NumPy out
        return convert_to_dst_type(out, dst, dtype=torch.float32)[0]
