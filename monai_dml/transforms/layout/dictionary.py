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
"""Dictionary-based wrappers of the data-layout transforms in :py:mod:`monai_dml.transforms.layout.array`."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_dml.transforms.layout.array import ExtractSlice, KiTSAnnotations, PlanarChannels

__all__ = [
    "ExtractSliceD",
    "ExtractSliceDict",
    "ExtractSliced",
    "KiTSAnnotationsD",
    "KiTSAnnotationsDict",
    "KiTSAnnotationsd",
    "PlanarChannelsD",
    "PlanarChannelsDict",
    "PlanarChannelsd",
]


class PlanarChannelsd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`monai_dml.transforms.PlanarChannels`: QUBIQ images (``stacked=False``)
    ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 4)`` become ``(C, H, W)``; rater stacks from
    :py:class:`monai_dml.transforms.LoadRatersd` (``stacked=True``) ``(R, H, W, 1)`` become ``(R, H, W)``.

    Example:
        >>> import numpy as np
        >>> PlanarChannelsd("image")({"image": np.zeros((64, 48))})["image"].shape
        (1, 64, 48)
    """

    backend = PlanarChannels.backend

    def __init__(
        self, keys: KeysCollection, stacked: bool = False, max_channels: int = 4, allow_missing_keys: bool = False
    ) -> None:
        """
        Args:
            keys: keys of the images (or rater stacks).
            stacked: see :py:class:`monai_dml.transforms.PlanarChannels`. Defaults to False.
            max_channels: see :py:class:`monai_dml.transforms.PlanarChannels`. Defaults to 4.
            allow_missing_keys: don't raise if a key is missing.

        Raises:
            ValueError: when ``max_channels`` is below 1.
        """
        super().__init__(keys, allow_missing_keys)
        self.planar = PlanarChannels(stacked=stacked, max_channels=max_channels)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """
        Raises:
            ValueError: for a value that is not a 2D slice of the accepted forms (naming the key and the shape).
        """
        d = dict(data)
        for key in self.key_iterator(d):
            try:
                d[key] = self.planar(d[key])
            except ValueError as e:
                raise ValueError(f"key {key!r}: {e}") from e
        return d


class ExtractSliced(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`monai_dml.transforms.ExtractSlice` for the entries of
    :py:func:`monai_dml.data.build_slice_index`: the slice index and its axis are read from each entry
    (``"slice"`` and ``"axis"`` keys, in the file's voxel axes), and the same slice is cropped from every key.

    Example:
        >>> import torch
        >>> entry = {"image": torch.zeros(1, 5, 6, 7), "label": torch.zeros(1, 5, 6, 7), "slice": 3, "axis": 2}
        >>> ExtractSliced(["image", "label"])(entry)["label"].shape
        torch.Size([1, 5, 6, 1])
    """

    backend = ExtractSlice.backend

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
        self.extract = ExtractSlice()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """
        Raises:
            KeyError: when the entry has no ``slice_key`` or ``axis_key``.
            ValueError: when the slice is outside a volume (naming the key, slice and shape).
        """
        d = dict(data)
        index, axis = int(d[self.slice_key]), int(d[self.axis_key])
        for key in self.key_iterator(d):
            try:
                d[key] = self.extract(d[key], index=index, axis=axis)
            except ValueError as e:
                raise ValueError(f"key {key!r}: {e}") from e
        return d


class KiTSAnnotationsd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`monai_dml.transforms.KiTSAnnotations`: the KiTS21/23 instance
    annotations of a case (``"annotations"`` of :py:func:`monai_dml.data.kits_datalist`) become a
    ``(A, spatial...)`` stack of per-annotator label maps in ``output_key``, the ``raters`` that
    :py:class:`monai_dml.transforms.RaterFusiond` (with ``num_classes``) fuses into a soft label.

    Example:
        >>> entry = {"annotations": {"kidney": [["kidney_instance-1_annotation-1.nii.gz"]]}}
        >>> KiTSAnnotationsd("annotations", output_key="raters")(entry)["raters"].shape  # doctest: +SKIP
        torch.Size([1, 128, 256, 256])
    """

    backend = KiTSAnnotations.backend

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
            label_values: see :py:class:`monai_dml.transforms.KiTSAnnotations`. Defaults to ``KITS_LABELS``.
            reader: see :py:class:`monai_dml.transforms.KiTSAnnotations`.
            allow_missing_keys: don't raise if the key is missing.

        Raises:
            ValueError: when more than one key is given.
        """
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"KiTSAnnotationsd takes one key, got {self.keys}.")
        self.output_key = output_key
        self.annotations = KiTSAnnotations(label_values=label_values, reader=reader)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """
        Raises:
            ValueError: see :py:class:`monai_dml.transforms.KiTSAnnotations` (naming the key).
            FileNotFoundError: when an annotation file does not exist (naming it).
        """
        d = dict(data)
        for key in self.key_iterator(d):
            try:
                d[self.output_key] = self.annotations(d[key])
            except ValueError as e:
                raise ValueError(f"key {key!r}: {e}") from e
        return d


ExtractSliceD = ExtractSliceDict = ExtractSliced
KiTSAnnotationsD = KiTSAnnotationsDict = KiTSAnnotationsd
PlanarChannelsD = PlanarChannelsDict = PlanarChannelsd
