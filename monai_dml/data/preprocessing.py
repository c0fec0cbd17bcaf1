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
``_target_`` instead of re-typing them. The data-layout transforms they need that MONAI lacks (``PlanarChannelsd``,
``ExtractSliced``, ``KiTSAnnotationsd``) live in :py:mod:`monai_dml.transforms.layout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai.transforms import (
    Compose,
    LoadImaged,
    Orientationd,
    Resized,
    ScaleIntensityd,
    ScaleIntensityRanged,
    Spacingd,
    SqueezeDimd,
)

from monai_dml.transforms import (
    ExtractSliced,
    KiTSAnnotationsd,
    LoadRatersd,
    PlanarChannelsd,
    RaterFusiond,
    TeacherTargetd,
)

__all__ = [
    "KITS_HU_WINDOW",
    "LITS_HU_WINDOW",
    "ct_2d_transforms",
    "ct_3d_transforms",
    "qubiq_2d_transforms",
]

# HU windows of Wang et al. (2023), Sect. 3.1
LITS_HU_WINDOW = (-60.0, 140.0)
KITS_HU_WINDOW = (-200.0, 300.0)
# MONAI's axis labels for axcodes, passed explicitly (its default is deprecated)
_AXIS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


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
        annotation_key: the KiTS21/23 annotations key (see :py:class:`monai_dml.transforms.KiTSAnnotationsd`), or
            None.
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
