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
"""Dictionary-based wrappers of the label smoothing transforms in :py:mod:`monai_dml.transforms.smoothing.array`."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms.transform import MapTransform

from .array import LabelSmoothing, LabelSmoothingMethod

__all__ = ["LabelSmoothingD", "LabelSmoothingDict", "LabelSmoothingd"]


class LabelSmoothingd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`monai_dml.transforms.smoothing.LabelSmoothing`: the same smoothing is
    applied to every key in ``keys``.

    Example:
        >>> import numpy as np
        >>> smooth = LabelSmoothingd(keys="label", method="uniform", epsilon=0.5)
        >>> smooth({"label": np.array([[[0.0, 1.0]]])})["label"]
        array([[[0.25, 0.75]]], dtype=float32)
    """

    backend = LabelSmoothing.backend

    def __init__(
        self,
        keys: KeysCollection,
        method: LabelSmoothingMethod | str = LabelSmoothingMethod.UNIFORM,
        epsilon: float = 0.1,
        num_classes: int | None = None,
        width: int = 1,
        sigma: float = 1.0,
        kernel_size: int = 3,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: keys of the labels to smooth. See also: :py:class:`monai.transforms.compose.MapTransform`.
            method: {``"uniform"``, ``"boundary"``, ``"svls"``}. Defaults to ``"uniform"``.
            epsilon: smoothing factor in [0, 1) of ``"uniform"`` and ``"boundary"``; not used by ``"svls"``.
                Defaults to 0.1.
            num_classes: if given, each label is a single-channel integer map with values in ``[0, num_classes)``.
                Defaults to None.
            width: half-width (>= 1) of the neighbourhood of ``"boundary"``. Defaults to 1.
            sigma: standard deviation (> 0) of the SVLS Gaussian. Defaults to 1.0.
            kernel_size: odd size (>= 3) of the SVLS kernel. Defaults to 3.
            allow_missing_keys: don't raise an exception if a key is missing. Defaults to False.

        Raises:
            ValueError: for invalid arguments, as :py:class:`monai_dml.transforms.smoothing.LabelSmoothing`.
        """
        super().__init__(keys, allow_missing_keys)
        self.smoother = LabelSmoothing(
            method=method,
            epsilon=epsilon,
            num_classes=num_classes,
            width=width,
            sigma=sigma,
            kernel_size=kernel_size,
        )

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.smoother(d[key])
        return d


LabelSmoothingD = LabelSmoothingDict = LabelSmoothingd
