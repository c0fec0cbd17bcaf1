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
"""Loading several raters' mask files of one case into one stack."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage, Transform
from monai.utils import TransformBackends

from monai_dml.utils import check_rater_shapes

__all__ = ["LoadRaters"]

PathLike = str | os.PathLike


class LoadRaters(Transform):
    """
    Load the mask files of several raters of one case and stack them into a ``(R, spatial...)`` MetaTensor.

    QUBIQ stores one file per rater (``taskTT_segRR.nii.gz``), KiTS21/23 several annotation files per structure.
    Every file is read with MONAI's ``LoadImage``; they must agree in shape and affine. The metadata of the first
    file is kept, with ``meta["rater_files"]`` listing all files in order.

    Example:
        >>> stack = LoadRaters()(["case01/task01_seg01.nii.gz", "case01/task01_seg02.nii.gz"])  # doctest: +SKIP
        >>> stack.shape  # doctest: +SKIP
        torch.Size([2, 256, 256])
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, reader: Any | None = None, affine_atol: float = 1e-4, dtype: Any = np.float32) -> None:
        """
        Args:
            reader: reader for MONAI's ``LoadImage`` (a name such as ``"NibabelReader"`` or an instance); None lets
                MONAI choose by file suffix.
            affine_atol: absolute tolerance when comparing the affines of the files. Defaults to 1e-4.
            dtype: data type of the loaded masks. Defaults to float32.
        """
        self.loader = LoadImage(reader=reader, image_only=True, dtype=dtype)
        self.affine_atol = affine_atol

    def __call__(self, filenames: Sequence[PathLike]) -> MetaTensor:
        """
        Args:
            filenames: one path per rater.

        Returns:
            ``(R, spatial...)`` MetaTensor.

        Raises:
            ValueError: when no file is given, a file cannot be read, or shapes/affines differ (naming the files).
            FileNotFoundError: when a file does not exist (naming it).
        """
        if isinstance(filenames, (str, os.PathLike)):
            filenames = [filenames]
        if len(filenames) == 0:
            raise ValueError("filenames lists no rater file (R = 0).")
        images: list[MetaTensor] = []
        for name in filenames:
            path = os.fspath(name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"rater file not found: {path}")
            try:
                img = self.loader(path)
            except Exception as e:
                raise ValueError(f"could not read rater file {path}: {e}") from e
            if not isinstance(img, MetaTensor):
                img = MetaTensor(img)
            if images:
                first, first_path = images[0], os.fspath(filenames[0])
                check_rater_shapes([(first_path, first.shape), (path, img.shape)], "rater files")
                if not torch.allclose(img.affine.double(), first.affine.double(), atol=self.affine_atol):
                    raise ValueError(
                        f"rater file {path} has another affine than {first_path}:\n{img.affine.numpy()}\n"
                        f"vs\n{first.affine.numpy()}"
                    )
            images.append(img)
        stacked = MetaTensor(torch.stack([i.as_tensor() for i in images]), meta=dict(images[0].meta))
        stacked.meta["rater_files"] = [os.fspath(f) for f in filenames]
        return stacked
