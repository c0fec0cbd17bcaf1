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
"""The 2D slice index of the CT data sets: which axial slices of each volume hold the target structure."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import Any

import nibabel as nib
import numpy as np
from monai.utils import optional_import

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

__all__ = ["axial_axis", "build_slice_index"]

_CACHE_VERSION = 2  # 2: the label range of each volume is kept too
DEFAULT_CACHE_NAME = "monai_dml_slice_index.json"


def axial_axis(affine: np.ndarray) -> int:
    """
    The voxel axis of a volume that runs along the patient's superior-inferior direction, from its affine.

    LiTS volumes are stored ``(x, y, z)`` (axis 2), KiTS volumes ``(z, y, x)`` (axis 0, with a permuted affine).

    Args:
        affine: the 4 x 4 voxel-to-world affine.

    Returns:
        0, 1 or 2.
    """
    codes = nib.aff2axcodes(np.asarray(affine))
    return next((i for i, c in enumerate(codes) if c in ("S", "I")), 2)


def _volume_slices(path: str, labels: Sequence[int]) -> dict[str, Any]:
    """Read one label volume and list the indices along its axial axis of the slices that hold ``labels``."""
    try:
        img: Any = nib.load(path)
        data = np.asanyarray(img.dataobj)
    except Exception as e:
        raise ValueError(f"could not read label volume {path}: {e}") from e
    if data.ndim != 3:
        raise ValueError(f"label volume {path} must be 3D, got shape {data.shape}.")
    if data.size == 0:
        raise ValueError(f"label volume {path} is empty (shape {data.shape}).")
    if np.issubdtype(data.dtype, np.floating) and not bool(np.isfinite(data).all()):
        raise ValueError(f"label volume {path} holds NaN or Inf values; a label map holds whole numbers.")
    whole = not np.issubdtype(data.dtype, np.floating) or bool((data == np.round(data)).all())
    axis = axial_axis(img.affine)
    hits = np.isin(data, np.asarray(labels)).any(axis=tuple(a for a in range(3) if a != axis))
    return {
        "axis": axis,
        "depth": int(data.shape[axis]),
        "slices": np.flatnonzero(hits).tolist(),
        "range": [float(data.min()), float(data.max())],
        "whole": whole,
    }


def _check_range(path: str, info: dict[str, Any], num_classes: int) -> None:
    lo, hi = info["range"]
    if lo >= 0 and hi <= num_classes - 1 and info["whole"]:
        return
    kind = "" if info["whole"] else ", not all whole numbers"
    hint = " (0/255: an 8-bit mask; rewrite it as a label map)" if hi == 255 else ""
    raise ValueError(
        f"label volume {path} must hold labels 0-{num_classes - 1} (num_classes={num_classes}), got values in "
        f"[{lo:g}, {hi:g}]{kind}{hint}."
    )


def _stamp(path: str) -> list[int]:
    stat = os.stat(path)
    return [int(stat.st_size), int(stat.st_mtime_ns)]


def build_slice_index(
    datalist: Sequence[dict[str, Any]],
    labels: Sequence[int] = (2,),
    label_key: str = "label",
    cache_file: str | os.PathLike | None = None,
    progress: bool = True,
    num_classes: int | None = None,
) -> list[dict[str, Any]]:
    """
    List the 2D training slices of CT volumes: every axial slice whose label map holds one of ``labels`` (the
    paper's LiTS/KiTS 2D training uses the tumour-containing slices, label 2).

    The axial axis comes from each volume's affine (:py:func:`axial_axis`), so LiTS (axial last) and KiTS (axial
    first) are sliced correctly. The per-volume result is cached in a JSON file and reused while the label file's
    size and modification time are unchanged, so the index is built once. Feed the entries to
    :py:func:`monai_dml.data.ct_2d_transforms`.

    Args:
        datalist: entries with ``label_key`` (from :py:func:`lits_datalist` or :py:func:`kits_datalist`).
        labels: label values that select a slice. Defaults to ``(2,)`` (tumour).
        label_key: the key of the label file. Defaults to ``"label"``.
        cache_file: the JSON cache; None puts ``monai_dml_slice_index.json`` in the folder that holds all label
            files (their common folder). Not writable: a warning, and the index is still returned.
        progress: show a tqdm progress bar when tqdm is installed. Defaults to True.
        num_classes: when given, every label volume must hold whole numbers in ``[0, num_classes)`` (a 0/255 mask,
            a float image passed as a label fail here, naming the file). Defaults to None (not checked).

    Returns:
        one entry per slice: a copy of the volume's entry plus ``"slice"`` (index) and ``"axis"`` (voxel axis),
        ordered as ``datalist`` and by slice.

    Raises:
        ValueError: for an empty ``datalist``, an entry without ``label_key``, a label file that cannot be read, is
            not 3D, holds NaN/Inf or (with ``num_classes``) values outside ``[0, num_classes)`` (naming it).

    Warns:
        UserWarning: listing the volumes with no selected slice (they add no entry; e.g. a tumour-free volume).
    """
    if len(datalist) == 0:
        raise ValueError("datalist is empty: build_slice_index needs at least one volume.")
    paths = []
    for i, entry in enumerate(datalist):
        if label_key not in entry:
            raise ValueError(f"datalist entry {i} ({entry.get('case', entry)}) has no {label_key!r} key.")
        paths.append(os.path.abspath(os.fspath(entry[label_key])))
    if cache_file is None:
        cache_file = os.path.join(os.path.commonpath([os.path.dirname(p) for p in paths]), DEFAULT_CACHE_NAME)
    cache_path = os.fspath(cache_file)
    wanted = sorted(int(v) for v in labels)
    cache: dict[str, Any] = {}
    if os.path.isfile(cache_path):
        try:
            with open(cache_path) as f:
                cache = json.load(f)
        except (OSError, ValueError):
            cache = {}
    if cache.get("version") != _CACHE_VERSION or cache.get("labels") != wanted:
        cache = {"version": _CACHE_VERSION, "labels": wanted, "volumes": {}}
    volumes: dict[str, Any] = cache["volumes"]
    changed = False
    indices = range(len(paths))
    bar = tqdm(indices, desc="indexing slices", disable=not progress) if has_tqdm else indices
    for i in bar:
        path = paths[i]
        if not os.path.isfile(path):
            raise ValueError(f"label file of datalist entry {i} not found: {path}")
        stamp = _stamp(path)
        if volumes.get(path, {}).get("stamp") != stamp:
            volumes[path] = {"stamp": stamp, **_volume_slices(path, wanted)}
            changed = True
        if num_classes is not None:
            _check_range(path, volumes[path], int(num_classes))
    if changed:
        try:
            with open(cache_path, "w") as f:
                json.dump(cache, f)
        except OSError as e:
            warnings.warn(f"could not write the slice index cache {cache_path}: {e}", stacklevel=2)
    out: list[dict[str, Any]] = []
    empty: list[str] = []
    for entry, path in zip(datalist, paths, strict=True):
        info = volumes[path]
        if not info["slices"]:
            empty.append(str(entry.get("case", path)))
        out.extend({**entry, "slice": k, "axis": info["axis"]} for k in info["slices"])
    if empty:
        warnings.warn(f"{len(empty)} volume(s) have no slice with labels {wanted} and add none: {empty}", stacklevel=2)
    return out
