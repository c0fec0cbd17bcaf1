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

import os
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import LoadImage, MapTransform
from monai.utils import ensure_tuple_rep

from monai_dml.transforms.teacher.array import TeacherTarget

__all__ = ["TeacherTargetD", "TeacherTargetDict", "TeacherTargetd"]


class TeacherTargetd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`monai_dml.transforms.TeacherTarget` that also loads saved teacher
    probabilities: a key holding a path to a ``.npy`` file (channel-first, as saved with ``numpy.save``) or to an
    image file readable by MONAI's ``LoadImage`` (channel moved first, e.g. NIfTI written by ``SaveImage``) is loaded
    first; a key holding an array is used as is. The target is written to ``output_keys`` (by default the key
    itself), so that the KD recipe is a pipeline choice: ``TeacherTargetd(keys="teacher", output_keys="label")``.

    Example:
        >>> import numpy as np
        >>> t = TeacherTargetd(keys="teacher", output_keys="label", temperature=2.0)
        >>> out = t({"teacher": np.array([[[0.1, 0.9]]], dtype=np.float32)})
        >>> out["label"].shape
        (1, 1, 2)
    """

    backend = TeacherTarget.backend

    def __init__(
        self,
        keys: KeysCollection,
        output_keys: KeysCollection | None = None,
        temperature: float = 1.0,
        reader: Any | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: keys holding teacher probabilities or paths to them.
            output_keys: where each target goes, one per key. Defaults to ``keys``.
            temperature: see :py:class:`monai_dml.transforms.TeacherTarget`.
            reader: reader for MONAI's ``LoadImage`` for non-``.npy`` paths; None chooses by suffix.
            allow_missing_keys: don't raise if a key is missing.

        Raises:
            ValueError: when ``output_keys`` and ``keys`` differ in length, or ``temperature`` is invalid.
        """
        super().__init__(keys, allow_missing_keys)
        self.output_keys = ensure_tuple_rep(output_keys if output_keys is not None else self.keys, len(self.keys))
        self.target = TeacherTarget(temperature)
        self.loader = LoadImage(reader=reader, image_only=True, ensure_channel_first=True, dtype=np.float32)

    def _load(self, value: Any) -> Any:
        if not isinstance(value, (str, os.PathLike)):
            return value
        path = os.fspath(value)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"teacher probability file not found: {path}")
        try:
            if path.endswith(".npy"):
                return MetaTensor(np.load(path).astype(np.float32), meta={"filename_or_obj": path})
            return self.loader(path)
        except Exception as e:
            raise ValueError(f"could not read teacher probabilities from {path}: {e}") from e

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_keys):
            value = d[key]
            try:
                d[out_key] = self.target(self._load(value))
            except ValueError as e:
                where = f" ({os.fspath(value)})" if isinstance(value, (str, os.PathLike)) else ""
                raise ValueError(f"teacher key {key!r}{where}: {e}") from e
        return d


TeacherTargetD = TeacherTargetDict = TeacherTargetd
