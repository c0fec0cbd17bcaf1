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
Data-layout transforms: the stored forms of the paper's data sets (QUBIQ's 2D slices, one slice of a CT volume,
KiTS21/23's per-instance annotation files) brought to MONAI's channel-first arrays.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor, get_track_meta
from monai.transforms import SpatialCrop, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

from monai_dml.transforms.io.array import LoadRaters
from monai_dml.utils import check_rater_shapes

__all__ = ["KITS_LABELS", "ExtractSlice", "KiTSAnnotations", "PlanarChannels"]

# label values of KiTS: KiTS19 has kidney and tumour; KiTS21/23 add cyst
KITS_LABELS = {"background": 0, "kidney": 1, "tumor": 2, "cyst": 3}

PathLike = str | os.PathLike


class PlanarChannels(Transform):
    """
    Bring one of QUBIQ's 2D slices to MONAI's channel-first form.

    QUBIQ stores one slice per case as ``(H, W)``, as ``(H, W, 1)`` or, for brain-tumor, with the four MR
    modalities in the last axis ``(H, W, 4)``. An image (``stacked=False``) becomes ``(C, H, W)``: ``(H, W)`` gains a
    channel axis and a last axis of at most ``max_channels`` moves first. A rater stack from
    :py:class:`monai_dml.transforms.LoadRaters` (``stacked=True``) loses a trailing singleton axis,
    ``(R, H, W, 1) -> (R, H, W)``; a stack ``(R, H, W)`` is returned as it is.

    MetaTensor metadata (affine, filename) is kept, except the file's ``spatial_shape``, which no longer fits the
    array: left in place, ``SaveImage`` would take the channel axis of an output derived from it for a spatial one
    (outputs are then written back as ``(H, W)`` slices). NumPy input gives NumPy output.

    Example:
        >>> import numpy as np
        >>> PlanarChannels()(np.zeros((64, 48, 4))).shape
        (4, 64, 48)
        >>> PlanarChannels(stacked=True)(np.zeros((3, 64, 48, 1))).shape
        (3, 64, 48)
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, stacked: bool = False, max_channels: int = 4) -> None:
        """
        Args:
            stacked: the input is already a channel-first stack ``(R, H, W[, 1])``. Defaults to False.
            max_channels: the largest last axis taken as channels; a larger one is a 3D volume. Defaults to 4.

        Raises:
            ValueError: when ``max_channels`` is below 1.
        """
        if max_channels < 1:
            raise ValueError(f"max_channels must be >= 1, got {max_channels}.")
        self.stacked = stacked
        self.max_channels = max_channels

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Args:
            img: ``(H, W)``, ``(H, W, C)`` with ``C <= max_channels``, or with ``stacked=True`` ``(R, H, W)`` or
                ``(R, H, W, 1)``.

        Returns:
            ``(C, H, W)`` (or ``(R, H, W)``), of the input's type.

        Raises:
            ValueError: when ``img`` is not a 2D slice in one of the forms above (naming its shape).
        """
        shape = tuple(img.shape)
        if self.stacked and len(shape) == 3:
            return img
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        if self.stacked and len(shape) == 4 and shape[-1] == 1:
            out = img_t.squeeze(-1)
        elif not self.stacked and len(shape) == 2:
            out = img_t.unsqueeze(0)
        elif not self.stacked and len(shape) == 3 and shape[-1] <= self.max_channels:
            out = torch.movedim(img_t, -1, 0)
        else:
            form = "(R, H, W) or (R, H, W, 1)" if self.stacked else f"(H, W) or (H, W, C<={self.max_channels})"
            raise ValueError(f"img must be a 2D slice {form}, got shape {shape}; use ct_3d_transforms for 3D.")
        if isinstance(out, MetaTensor):
            # a torch operation copies the meta dictionary, so this leaves the input's metadata alone
            out.meta.pop("spatial_shape", None)
        dst = img if isinstance(img, np.ndarray) else img_t  # NumPy in, NumPy out
        return convert_to_dst_type(out, dst)[0]


class ExtractSlice(Transform):
    """
    Crop one 2D slice out of a channel-first volume ``(C, X, Y, Z)``, keeping a singleton axis:
    ``index`` on spatial ``axis`` (in the file's voxel axes, as :py:func:`monai_dml.data.build_slice_index` gives
    them). The crop is MONAI's ``SpatialCrop``, so the affine follows; ``Orientation`` then moves the singleton
    (axial) axis last for LiTS (axial last) and KiTS (axial first) alike, and ``SqueezeDim(dim=-1)`` removes it.

    ``index`` and ``axis`` given to ``__call__`` override those given to ``__init__`` (the ``AsDiscrete`` pattern).

    Example:
        >>> import torch
        >>> ExtractSlice(index=2, axis=0)(torch.zeros(1, 5, 6, 7)).shape
        torch.Size([1, 1, 6, 7])
    """

    backend = SpatialCrop.backend

    def __init__(self, index: int | None = None, axis: int | None = None) -> None:
        """
        Args:
            index: the slice index on ``axis``, or None to give it to ``__call__``. Defaults to None.
            axis: the spatial axis (0-2, or -3 to -1) ``index`` counts along, or None to give it to ``__call__``.
                Defaults to None.
        """
        self.index = index
        self.axis = axis

    def __call__(self, img: NdarrayOrTensor, index: int | None = None, axis: int | None = None) -> NdarrayOrTensor:
        """
        Args:
            img: channel-first volume ``(C, X, Y, Z)``.
            index: overrides the ``index`` of ``__init__``.
            axis: overrides the ``axis`` of ``__init__``.

        Returns:
            ``(C, 1, Y, Z)``, ``(C, X, 1, Z)`` or ``(C, X, Y, 1)``, of the input's type.

        Raises:
            ValueError: when ``index`` or ``axis`` is given neither here nor to ``__init__``, ``axis`` is not a
                spatial axis, or the slice is outside the volume (naming the slice and the shape).
        """
        index = self.index if index is None else index
        axis = self.axis if axis is None else axis
        if index is None or axis is None:
            raise ValueError(f"index and axis must be given to __init__ or __call__, got {index=} and {axis=}.")
        index, axis = int(index), int(axis)
        spatial = tuple(img.shape[1:])
        if not -3 <= axis < 3:
            raise ValueError(f"axis must be a spatial axis of a (C, X, Y, Z) volume (0-2), got {axis}.")
        if len(spatial) != 3 or not 0 <= index < spatial[axis]:
            raise ValueError(f"slice {index} on axis {axis} is outside the volume of shape {spatial}.")
        roi = [slice(None)] * 3
        roi[axis] = slice(index, index + 1)
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        out = SpatialCrop(roi_slices=roi)(img_t)
        dst = img if isinstance(img, np.ndarray) else img_t  # NumPy in, NumPy out
        return convert_to_dst_type(out, dst)[0]


class KiTSAnnotations(Transform):
    """
    Read the KiTS21/23 instance annotations of one case (the ``"annotations"`` of
    :py:func:`monai_dml.data.kits_datalist`, ``{structure: [[files of instance 1], [instance 2], ...]}``) into a
    ``(A, spatial...)`` stack of per-annotator label maps, the raters that
    :py:class:`monai_dml.transforms.RaterFusion` (with ``num_classes``) fuses into a soft label.

    Annotator ``a`` is the ``a``-th annotation of every instance; an instance with fewer annotations reuses its own
    cyclically. Structures are painted in label order, kidney (1), tumour (2), cyst (3), so a tumour drawn inside a
    kidney keeps the tumour label. The files of an instance are read with
    :py:class:`monai_dml.transforms.LoadRaters` (errors name the file); the output is a float32 MetaTensor with the
    first file's metadata and ``meta["annotation_files"]``, the annotations given.

    Like MONAI's ``LoadImage`` and :py:class:`monai_dml.transforms.LoadRaters`, this is a loading transform: its
    input is the file names of one case, not an array.

    Example:
        >>> annotations = {"kidney": [["kidney_instance-1_annotation-1.nii.gz"]]}
        >>> KiTSAnnotations()(annotations).shape  # doctest: +SKIP
        torch.Size([1, 128, 256, 256])
    """

    backend = LoadRaters.backend

    def __init__(self, label_values: Mapping[str, int] | None = None, reader: Any | None = None) -> None:
        """
        Args:
            label_values: label value per structure. Defaults to ``KITS_LABELS`` (kidney 1, tumor 2, cyst 3).
            reader: reader for :py:class:`monai_dml.transforms.LoadRaters`; None lets MONAI choose by suffix.
        """
        self.label_values = dict(KITS_LABELS if label_values is None else label_values)
        self.loader = LoadRaters(reader=reader)

    def __call__(self, annotations: Mapping[str, Sequence[Sequence[PathLike]]]) -> MetaTensor:
        """
        Args:
            annotations: ``{structure: [[annotation files of instance 1], [instance 2], ...]}``.

        Returns:
            ``(A, spatial...)`` float32 MetaTensor, ``A`` the most annotations of any instance.

        Raises:
            ValueError: for a structure without a label value, no annotation file at all, files of different
                shapes, or files of one instance with different affines (naming them).
            FileNotFoundError: when a file does not exist (naming it).
        """
        stacks: list[tuple[int, MetaTensor]] = []
        for structure, instances in annotations.items():
            if structure not in self.label_values:
                raise ValueError(f"no label value for structure {structure!r}; label_values={self.label_values}.")
            stacks.extend((self.label_values[structure], self.loader(files)) for files in instances)
        if not stacks:
            raise ValueError("annotations hold no annotation file.")
        check_rater_shapes(((s.meta["rater_files"][0], s.shape[1:]) for _, s in stacks), "annotation files")
        num = max(s.shape[0] for _, s in stacks)
        first = stacks[0][1]
        out = torch.zeros((num, *first.shape[1:]), dtype=torch.float32)
        for value, stack in sorted(stacks, key=lambda vs: vs[0]):
            for a in range(num):
                out[a][torch.as_tensor(stack[a % stack.shape[0]]) > 0] = float(value)
        meta = dict(first.meta)
        meta["annotation_files"] = annotations
        return MetaTensor(out, meta=meta)
