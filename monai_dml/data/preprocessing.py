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
Preprocessing chains of the paper's data sets as MONAI ``Compose`` objects, so that bundle configs name them with
``_target_`` instead of re-typing them, plus the three dictionary transforms they need that MONAI lacks.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    LoadImaged,
    MapTransform,
    Orientationd,
    Resized,
    ScaleIntensityd,
    ScaleIntensityRanged,
    Spacingd,
    SpatialCrop,
    SqueezeDimd,
)

from monai_dml.data.kits import KITS_LABELS
from monai_dml.transforms import LoadRaters, LoadRatersd, RaterFusiond, TeacherTargetd
from monai_dml.utils import check_rater_shapes

__all__ = [
    "KITS_HU_WINDOW",
    "LITS_HU_WINDOW",
    "ExtractSliceD",
    "ExtractSliceDict",
    "ExtractSliced",
    "KiTSAnnotationsD",
    "KiTSAnnotationsDict",
    "KiTSAnnotationsd",
    "PlanarChannelsD",
    "PlanarChannelsDict",
    "PlanarChannelsd",
    "ct_2d_transforms",
    "ct_3d_transforms",
    "qubiq_2d_transforms",
]

# HU windows of Wang et al. (2023), Sect. 3.1
LITS_HU_WINDOW = (-60.0, 140.0)
KITS_HU_WINDOW = (-200.0, 300.0)
# MONAI's axis labels for axcodes, passed explicitly (its default is deprecated)
_AXIS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


class PlanarChannelsd(MapTransform):
    """
    Bring QUBIQ's 2D slices to MONAI's channel-first form.

    QUBIQ stores one slice per case as ``(H, W)``, as ``(H, W, 1)`` or, for brain-tumor, with the four MR
    modalities in the last axis ``(H, W, 4)``. Images (``stacked=False``) become ``(C, H, W)``; rater stacks from
    :py:class:`monai_dml.transforms.LoadRatersd` (``stacked=True``) lose a trailing singleton axis,
    ``(R, H, W, 1) -> (R, H, W)``. MetaTensor metadata is kept, except the file's ``spatial_shape``, which no
    longer fits the array (outputs are then written back as ``(H, W)`` slices).
    """

    def __init__(
        self, keys: KeysCollection, stacked: bool = False, max_channels: int = 4, allow_missing_keys: bool = False
    ) -> None:
        """
        Args:
            keys: keys of the images (or rater stacks).
            stacked: the values are already channel-first stacks ``(R, H, W[, 1])``. Defaults to False.
            max_channels: the largest last axis taken as channels; a larger one is a 3D volume. Defaults to 4.
            allow_missing_keys: don't raise if a key is missing.
        """
        super().__init__(keys, allow_missing_keys)
        self.stacked = stacked
        self.max_channels = max_channels

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """
        Raises:
            ValueError: for a value that is not a 2D slice in one of the forms above (naming the key and shape).
        """
        d = dict(data)
        for key in self.key_iterator(d):
            img = torch.as_tensor(d[key]) if not isinstance(d[key], torch.Tensor) else d[key]
            shape = tuple(img.shape)
            if self.stacked and img.ndim == 3:
                continue
            if self.stacked and img.ndim == 4 and shape[-1] == 1:
                d[key] = img.squeeze(-1)
            elif not self.stacked and img.ndim == 2:
                d[key] = img.unsqueeze(0)
            elif not self.stacked and img.ndim == 3 and shape[-1] <= self.max_channels:
                d[key] = torch.movedim(img, -1, 0)
            else:
                form = "(R, H, W) or (R, H, W, 1)" if self.stacked else f"(H, W) or (H, W, C<={self.max_channels})"
                raise ValueError(f"{key!r} must be a 2D slice {form}, got shape {shape}; use ct_3d_transforms for 3D.")
            if isinstance(d[key], MetaTensor):
                # the file's spatial_shape ((H, W, 1) or (H, W, C)) no longer describes the array; left in place,
                # SaveImage would take the channel axis of an output derived from it for a spatial one
                d[key].meta.pop("spatial_shape", None)
        return d


class ExtractSliced(MapTransform):
    """
    Crop each entry's 2D slice out of its loaded volume, keeping a singleton axis, for the entries of
    :py:func:`monai_dml.data.build_slice_index` (``"slice"`` and ``"axis"`` keys, in the file's voxel axes).

    The crop is MONAI's ``SpatialCrop``, so the affine follows; ``Orientationd`` then moves the singleton (axial)
    axis last for LiTS (axial last) and KiTS (axial first) alike, and ``SqueezeDimd(dim=-1)`` removes it.
    """

    def __init__(
        self,
        keys: KeysCollection,
        slice_key: str = "slice",
        axis_key: str = "axis",
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: keys of channel-first volumes ``(C, X, Y, Z)``.
            slice_key: the key holding the slice index. Defaults to ``"slice"``.
            axis_key: the key holding the spatial axis (0-2) it indexes. Defaults to ``"axis"``.
            allow_missing_keys: don't raise if a key is missing.
        """
        super().__init__(keys, allow_missing_keys)
        self.slice_key = slice_key
        self.axis_key = axis_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """
        Raises:
            KeyError: when the entry has no ``slice_key`` or ``axis_key``.
            ValueError: when the slice is outside the volume (naming the key, slice and shape).
        """
        d = dict(data)
        index, axis = int(d[self.slice_key]), int(d[self.axis_key])
        roi = [slice(None)] * 3
        roi[axis] = slice(index, index + 1)
        crop = SpatialCrop(roi_slices=roi)
        for key in self.key_iterator(d):
            spatial = tuple(d[key].shape[1:])
            if len(spatial) != 3 or not 0 <= index < spatial[axis]:
                raise ValueError(f"{key!r}: slice {index} on axis {axis} is outside the volume of shape {spatial}.")
            d[key] = crop(d[key])
        return d


class KiTSAnnotationsd(MapTransform):
    """
    Turn the KiTS21/23 instance annotations of a case (``"annotations"`` of :py:func:`monai_dml.data.kits_datalist`)
    into a ``(A, spatial...)`` stack of per-annotator label maps, the ``raters`` that
    :py:class:`monai_dml.transforms.RaterFusiond` (with ``num_classes``) fuses into a soft label.

    Annotator ``a`` is the ``a``-th annotation of every instance; an instance with fewer annotations reuses its
    own cyclically. Structures are painted in label order, kidney (1), tumour (2), cyst (3), so a tumour drawn
    inside a kidney keeps the tumour label. The annotation files are read with
    :py:class:`monai_dml.transforms.LoadRaters` (errors name the file); the output carries the first file's
    metadata.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_key: str = "raters",
        label_values: Mapping[str, int] | None = None,
        reader: Any | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: the key holding the annotations dictionary (one key).
            output_key: where to write the stack. Defaults to ``"raters"``.
            label_values: label value per structure. Defaults to ``KITS_LABELS`` (kidney 1, tumor 2, cyst 3).
            reader: reader for :py:class:`monai_dml.transforms.LoadRaters`.
            allow_missing_keys: don't raise if the key is missing.

        Raises:
            ValueError: when more than one key is given.
        """
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"KiTSAnnotationsd takes one key, got {self.keys}.")
        self.output_key = output_key
        self.label_values = dict(KITS_LABELS if label_values is None else label_values)
        self.loader = LoadRaters(reader=reader)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """
        Raises:
            ValueError: for a structure without a label value, an entry without annotation files, or files whose
                shapes or affines differ (naming them).
        """
        d = dict(data)
        for key in self.key_iterator(d):
            stacks: list[tuple[int, MetaTensor]] = []
            for structure, instances in d[key].items():
                if structure not in self.label_values:
                    raise ValueError(f"no label value for structure {structure!r}; label_values={self.label_values}.")
                stacks.extend((self.label_values[structure], self.loader(files)) for files in instances)
            if not stacks:
                raise ValueError(f"{key!r} holds no annotation file.")
            first_files = ((s.meta["rater_files"][0], s.shape[1:]) for _, s in stacks)
            check_rater_shapes(first_files, f"{key!r}: annotation files")
            num = max(s.shape[0] for _, s in stacks)
            first = stacks[0][1]
            out = torch.zeros((num, *first.shape[1:]), dtype=torch.float32)
            for value, stack in sorted(stacks, key=lambda vs: vs[0]):
                for a in range(num):
                    out[a][torch.as_tensor(stack[a % stack.shape[0]]) > 0] = float(value)
            meta = dict(first.meta)
            meta["annotation_files"] = d[key]
            d[self.output_key] = MetaTensor(out, meta=meta)
        return d


def _nearest(keys: Sequence[str]) -> list[str]:
    return ["nearest"] * len(keys)


def _add_teacher(chain: list[Any], keys: list[str], modes: list[str], teacher_key: str | None, reader: Any) -> None:
    """Load and check a teacher's probability volume; it then follows the image's spatial transforms (bilinear)."""
    if teacher_key is not None:
        chain.append(TeacherTargetd(teacher_key, reader=reader))
        keys.append(teacher_key)
        modes.append("bilinear")


def qubiq_2d_transforms(
    size: int = 256,
    image_key: str = "image",
    rater_key: str = "raters",
    fusion: str | None = None,
    reader: str | None = "NibabelReader",
) -> Compose:
    """
    The QUBIQ chain of Wang et al. (2023): load the 2D slice and its raters, channel-first, scale every channel to
    [0, 1], resize to ``size x size`` (bilinear for the image, nearest for the raters), and optionally fuse.

    Output: ``image`` ``(C, size, size)`` float32 (C = 4 for brain-tumor), ``raters`` ``(R, size, size)`` binary;
    with ``fusion``, also ``label`` ``(1, size, size)``.

    Args:
        size: output size. Defaults to 256 (the paper's).
        image_key: the image key. Defaults to ``"image"``.
        rater_key: the key with the list of rater files. Defaults to ``"raters"``.
        fusion: None, or a :py:class:`monai_dml.transforms.RaterFusiond` method (``"majority"``, ``"uniform"``,
            ``"weighted"``, ...) that writes ``label``.
        reader: MONAI image reader. Defaults to ``"NibabelReader"``.

    Returns:
        a ``Compose``; from a bundle: ``{"_target_": "monai_dml.data.qubiq_2d_transforms", "size": 256}``.
    """
    spatial = (size, size)
    chain: list[Any] = [
        LoadImaged(image_key, reader=reader, image_only=True),
        PlanarChannelsd(image_key),
        LoadRatersd(rater_key, reader=reader),
        PlanarChannelsd(rater_key, stacked=True),
        ScaleIntensityd(image_key, minv=0.0, maxv=1.0, channel_wise=True),
        Resized(image_key, spatial, mode="bilinear"),
        Resized(rater_key, spatial, mode="nearest"),
    ]
    if fusion is not None:
        chain.append(RaterFusiond(rater_key, output_key="label", method=fusion))
    return Compose(chain)


def ct_2d_transforms(
    hu_window: Sequence[float] = LITS_HU_WINDOW,
    size: int = 512,
    image_key: str = "image",
    label_key: str | None = "label",
    annotation_key: str | None = None,
    axcodes: str = "RAS",
    reader: str | None = "NibabelReader",
    teacher_key: str | None = None,
) -> Compose:
    """
    The LiTS/KiTS 2D chain of Wang et al. (2023) for the entries of :py:func:`monai_dml.data.build_slice_index`:
    load the volume, crop the entry's slice, reorient (so LiTS and KiTS slices share one in-plane orientation),
    window the HU values to [0, 1] and resize to ``size x size``.

    Output: ``image`` ``(1, size, size)`` float32 in [0, 1]; ``label`` ``(1, size, size)`` integer-valued (0/1/2);
    with ``annotation_key`` (KiTS21/23), also ``raters`` ``(A, size, size)`` per-annotator label maps.

    Args:
        hu_window: ``(a_min, a_max)`` HU clipped and scaled to [0, 1]. Defaults to LiTS's ``(-60, 140)``; KiTS uses
            ``KITS_HU_WINDOW`` ``(-200, 300)``.
        size: output size. Defaults to 512 (the paper's).
        image_key: the image key. Defaults to ``"image"``.
        label_key: the label key, or None. Defaults to ``"label"``.
        annotation_key: the KiTS21/23 annotations key (see :py:class:`KiTSAnnotationsd`), or None.
        axcodes: orientation of the volume before the slice is squeezed. Defaults to ``"RAS"``.
        reader: MONAI image reader. Defaults to ``"NibabelReader"``.
        teacher_key: a key with the path of a teacher's saved probability volume ``(C, X, Y, Z)`` in the image's
            geometry (e.g. written by a bundle's ``inference.json``), loaded and checked by
            :py:class:`monai_dml.transforms.TeacherTargetd` and sliced and resized (bilinear) with the image; or None.

    Returns:
        a ``Compose``.
    """
    keys = [k for k in (image_key, label_key) if k is not None]
    chain: list[Any] = [LoadImaged(keys, reader=reader, image_only=True, ensure_channel_first=True)]
    if annotation_key is not None:
        chain.append(KiTSAnnotationsd(annotation_key, output_key="raters", reader=reader))
        keys.append("raters")
    modes = ["bilinear", *_nearest(keys[1:])]
    _add_teacher(chain, keys, modes, teacher_key, reader)
    chain += [
        ExtractSliced(keys),
        Orientationd(keys, axcodes=axcodes, labels=_AXIS_LABELS),
        SqueezeDimd(keys, dim=-1),
        ScaleIntensityRanged(image_key, a_min=hu_window[0], a_max=hu_window[1], b_min=0.0, b_max=1.0, clip=True),
        Resized(keys, (size, size), mode=modes),
    ]
    return Compose(chain)


def ct_3d_transforms(
    hu_window: Sequence[float] = KITS_HU_WINDOW,
    pixdim: Sequence[float] | None = None,
    spatial_size: Sequence[int] | None = None,
    image_key: str = "image",
    label_key: str | None = "label",
    rater_key: str | None = None,
    annotation_key: str | None = None,
    axcodes: str = "RAS",
    reader: str | None = "NibabelReader",
    teacher_key: str | None = None,
) -> Compose:
    """
    The 3D CT chain: load, reorient to ``axcodes`` (LiTS is stored axial last, KiTS axial first; both come out
    ``(C, R-L, A-P, S-I)`` for ``"RAS"``), optionally resample to ``pixdim`` and resize, and window the HU values to
    [0, 1].

    Output: ``image`` ``(1, X, Y, Z)`` float32; ``label`` ``(1, X, Y, Z)`` integer-valued; ``raters``
    ``(R, X, Y, Z)`` from ``rater_key`` (QUBIQ 2021 pancreas) or ``annotation_key`` (KiTS21/23).

    Args:
        hu_window: ``(a_min, a_max)`` HU clipped and scaled to [0, 1]. Defaults to KiTS's ``(-200, 300)``.
        pixdim: output spacing in millimetres, or None to keep the file's. Defaults to None.
        spatial_size: output size, or None to keep it. Defaults to None.
        image_key: the image key. Defaults to ``"image"``.
        label_key: the label key, or None. Defaults to ``"label"``.
        rater_key: a key with a list of rater files (loaded with ``LoadRatersd``), or None.
        annotation_key: the KiTS21/23 annotations key, or None; its stack is written to ``"raters"``.
        axcodes: output orientation. Defaults to ``"RAS"``.
        reader: MONAI image reader. Defaults to ``"NibabelReader"``.
        teacher_key: a key with the path of a teacher's saved probability volume in the image's geometry, loaded
            and checked by :py:class:`monai_dml.transforms.TeacherTargetd` and resampled (bilinear) with the image;
            or None.

    Returns:
        a ``Compose``.

    Raises:
        ValueError: when both ``rater_key`` and ``annotation_key`` are given.
    """
    if rater_key is not None and annotation_key is not None:
        raise ValueError(f"give rater_key or annotation_key, not both; got {rater_key!r} and {annotation_key!r}.")
    keys = [k for k in (image_key, label_key) if k is not None]
    chain: list[Any] = [LoadImaged(keys, reader=reader, image_only=True, ensure_channel_first=True)]
    if rater_key is not None:
        chain.append(LoadRatersd(rater_key, reader=reader))
        keys.append(rater_key)
    if annotation_key is not None:
        chain.append(KiTSAnnotationsd(annotation_key, output_key="raters", reader=reader))
        keys.append("raters")
    modes = ["bilinear", *_nearest(keys[1:])]
    _add_teacher(chain, keys, modes, teacher_key, reader)
    chain.append(Orientationd(keys, axcodes=axcodes, labels=_AXIS_LABELS))
    if pixdim is not None:
        chain.append(Spacingd(keys, pixdim=pixdim, mode=modes))
    if spatial_size is not None:
        chain.append(Resized(keys, spatial_size, mode=modes))
    chain.append(
        ScaleIntensityRanged(image_key, a_min=hu_window[0], a_max=hu_window[1], b_min=0.0, b_max=1.0, clip=True)
    )
    return Compose(chain)


ExtractSliceD = ExtractSliceDict = ExtractSliced
KiTSAnnotationsD = KiTSAnnotationsDict = KiTSAnnotationsd
PlanarChannelsD = PlanarChannelsDict = PlanarChannelsd
