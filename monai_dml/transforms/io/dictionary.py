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

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_dml.transforms.io.array import LoadRaters

__all__ = ["LoadRatersD", "LoadRatersDict", "LoadRatersd"]


class LoadRatersd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`monai_dml.transforms.LoadRaters`: each key holds a list of rater files
    and is replaced by their ``(R, spatial...)`` stack.

    Example:
        >>> t = LoadRatersd(keys="raters")
        >>> t({"raters": ["seg01.nii.gz", "seg02.nii.gz", "seg03.nii.gz"]})["raters"].shape  # doctest: +SKIP
        torch.Size([3, 64, 64])
    """

    backend = LoadRaters.backend

    def __init__(
        self,
        keys: KeysCollection,
        reader: Any | None = None,
        affine_atol: float = 1e-4,
        dtype: Any = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: keys whose values are lists of rater files.
            reader: see :py:class:`monai_dml.transforms.LoadRaters`.
            affine_atol: see :py:class:`monai_dml.transforms.LoadRaters`.
            dtype: see :py:class:`monai_dml.transforms.LoadRaters`.
            allow_missing_keys: don't raise if a key is missing.
        """
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadRaters(reader=reader, affine_atol=affine_atol, dtype=dtype)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


LoadRatersD = LoadRatersDict = LoadRatersd
