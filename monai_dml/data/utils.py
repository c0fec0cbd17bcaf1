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
"""Checks shared by the data-set readers: folders, NIfTI headers, shapes, and reporting skipped cases."""

from __future__ import annotations

import gzip
import os
import warnings
import zlib
from collections.abc import Sequence
from typing import Any

import nibabel as nib
import numpy as np
from monai.utils import StrEnum

from monai_dml.data.folds import assign_folds, natural_key
from monai_dml.utils import look_up_option

__all__ = [
    "IncompletePolicy",
    "check_dataset_dir",
    "check_image_file",
    "check_label_shape",
    "check_mask_file",
    "check_nifti_length",
    "finish_datalist",
    "is_nifti",
    "nifti_stem",
    "read_nifti_data",
    "read_nifti_shape",
    "report_incomplete",
]

NIFTI_SUFFIXES = (".nii.gz", ".nii")


class IncompletePolicy(StrEnum):
    """
    What a reader does with an incomplete case (an image without its label, a missing rater file).

    - ``ERROR``: raise ``ValueError`` naming the files.
    - ``SKIP``: leave the case out and warn with the list of case ids.
    - ``KEEP``: keep the case with what it has and warn with the list (missing raters only).
    """

    ERROR = "error"
    SKIP = "skip"
    KEEP = "keep"


def is_nifti(name: str) -> bool:
    """True for ``.nii`` / ``.nii.gz`` file names, False for macOS resource forks (``._name.nii.gz``, in the MSD
    archives) and other files."""
    base = os.path.basename(name)
    return base.endswith(NIFTI_SUFFIXES) and not base.startswith("._")


def nifti_stem(name: str) -> str:
    """The file name without folder and ``.nii`` / ``.nii.gz`` suffix: ``"a/volume-3.nii" -> "volume-3"``."""
    base = os.path.basename(name)
    for suffix in NIFTI_SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def check_dataset_dir(dataset_dir: str | os.PathLike) -> str:
    """
    Args:
        dataset_dir: the root folder of a data set.

    Returns:
        the folder as an absolute path.

    Raises:
        FileNotFoundError: when it does not exist.
        NotADirectoryError: when it is not a folder.
    """
    path = os.path.abspath(os.fspath(dataset_dir))
    if not os.path.exists(path):
        raise FileNotFoundError(f"dataset_dir does not exist: {path}")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"dataset_dir is not a folder: {path}")
    return path


def read_nifti_shape(path: str) -> tuple[int, ...]:
    """
    Read a NIfTI file's array shape from its header only (nibabel loads the data lazily), and check that the file
    is long enough for the array its header describes (:py:func:`check_nifti_length`), so that a truncated file
    fails here, naming itself, rather than with a bare ``EOFError`` in a data loader.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.

    Returns:
        the shape of the stored array.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when it is not a readable NIfTI file (corrupt, truncated, not NIfTI), naming the path.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"file not found: {path}")
    try:
        img: Any = nib.load(path)
        shape = tuple(int(s) for s in img.shape)
    except Exception as e:
        raise ValueError(
            f"could not read the NIfTI header of {path}: {e} (the file is corrupt, truncated or not NIfTI)."
        ) from e
    check_nifti_length(path, img)
    return shape


def check_nifti_length(path: str, img: Any = None) -> None:
    """
    Check, without reading the data, that a NIfTI file holds as many bytes as its header announces.

    An uncompressed ``.nii`` must be at least ``vox_offset + voxels * itemsize`` bytes long. A ``.nii.gz`` ends with
    the uncompressed length (modulo 2**32, the gzip trailer); a file cut short ends with other bytes. Only when that
    quick test fails is the file decompressed, so that a valid file written as several gzip members (whose trailer
    gives the last member's length) is never refused.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        img: the file loaded by ``nibabel.load``; None loads it (header only).

    Raises:
        ValueError: naming the file when it is shorter than its header says (truncated) or not valid gzip.
    """
    img = nib.load(path) if img is None else img
    proxy = getattr(img, "dataobj", None)
    offset, dtype = getattr(proxy, "offset", None), getattr(proxy, "dtype", None)
    if offset is None or dtype is None:  # not a file-backed array proxy: nothing to compare
        return
    expected = int(offset) + int(np.prod(img.shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if not path.endswith(".gz"):
        size = os.path.getsize(path)
        if size < expected:
            raise ValueError(f"{path} is truncated: {size} bytes, but its header needs {expected}.")
        return
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        if int.from_bytes(f.read(4), "little") == expected % 2**32:
            return
    length = 0
    try:
        with gzip.open(path, "rb") as g:
            while chunk := g.read(1 << 24):
                length += len(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{path} is truncated or corrupt ({type(e).__name__}: {e}).") from e
    if length < expected:
        raise ValueError(f"{path} is truncated: {length} bytes uncompressed, but its header needs {expected}.")


def read_nifti_data(path: str, what: str = "file") -> np.ndarray:
    """
    Read a NIfTI file's whole array, so that a file whose header is intact but whose data are cut short (a
    truncated ``.nii.gz``: ``EOFError`` in gzip) or corrupt fails here, naming the file, rather than later inside
    a data loader.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        what: what the file is, for the message (``"image"``, ``"rater file"``, ...). Defaults to ``"file"``.

    Returns:
        the stored array (on-disk dtype, scaling applied by nibabel).

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when it cannot be read in full or holds no voxel, naming the path (and the reader's error).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        img: Any = nib.load(path)
        data = np.asanyarray(img.dataobj)
    except Exception as e:
        raise ValueError(
            f"could not read {what} {path} ({type(e).__name__}: {e}); the file is corrupt or truncated."
        ) from e
    if data.size == 0:
        raise ValueError(f"{what} {path} holds no voxel (shape {data.shape}).")
    return data


def _check_finite(data: np.ndarray, path: str, what: str) -> None:
    if np.issubdtype(data.dtype, np.floating) and not bool(np.isfinite(data).all()):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise ValueError(f"{what} {path} holds {bad} NaN or Inf value(s) (shape {data.shape}).")


def check_image_file(path: str, what: str = "image") -> tuple[int, ...]:
    """
    Read an image file in full (:py:func:`read_nifti_data`) and check that its values are finite.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        what: what the file is, for the message. Defaults to ``"image"``.

    Returns:
        the shape of the stored array.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: naming the file, when it cannot be read in full or holds NaN or Inf.
    """
    data = read_nifti_data(path, what)
    _check_finite(data, path, what)
    return tuple(int(s) for s in data.shape)


def check_mask_file(path: str, what: str = "rater file") -> tuple[int, ...]:
    """
    Read a binary mask file in full (:py:func:`read_nifti_data`) and check that it holds only 0 and 1.

    Masks stored as 0/255 (the 8-bit image convention of PNG exports) are refused with a message saying so rather
    than rescaled: a mask whose maximum is 255 may as well be a label map or an intensity image saved by mistake,
    and a silent division would hide that. Rewrite such files as 0/1 (e.g. ``mask // 255``).

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        what: what the file is, for the message. Defaults to ``"rater file"``.

    Returns:
        the shape of the stored array.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: naming the file, when it cannot be read in full, holds NaN or Inf, or values other than 0 and 1.
    """
    data = read_nifti_data(path, what)
    _check_finite(data, path, what)
    if bool(np.isin(data, (0, 1)).all()):
        return tuple(int(s) for s in data.shape)
    values = np.unique(data)
    shown = ", ".join(f"{v:g}" for v in values[:8].tolist()) + (", ..." if values.size > 8 else "")
    if bool(np.isin(values, (0, 255)).all()):
        raise ValueError(
            f"{what} {path} holds 0/255 values (the 8-bit image convention); binary masks must hold 0 and 1. "
            "Rewrite the file as 0/1 (e.g. mask // 255)."
        )
    raise ValueError(f"{what} {path} must be a binary mask of 0 and 1, found values [{shown}].")


def _trim(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def check_label_shape(
    image_path: str, label_path: str, channels_last: bool = False, image_shape: Sequence[int] | None = None
) -> None:
    """
    Check from the headers that a label file has the spatial shape of its image.

    Trailing singleton axes are ignored (a 2D slice stored as ``(H, W, 1)`` matches ``(H, W)``).

    Args:
        image_path: the image file.
        label_path: the label (or rater) file.
        channels_last: the image may carry one more, last axis of channels (QUBIQ brain-tumor: ``(H, W, 4)``).
        image_shape: the image's shape when the caller read it already (one header read for many labels).

    Raises:
        ValueError: when the shapes differ (naming both files and shapes) or a header cannot be read.
        FileNotFoundError: when a file does not exist.
    """
    full_image = tuple(image_shape) if image_shape is not None else read_nifti_shape(image_path)
    full_label = read_nifti_shape(label_path)
    image, label = _trim(full_image), _trim(full_label)
    if image == label or (channels_last and image[:-1] == label):
        return
    raise ValueError(f"label {label_path} has shape {full_label} but its image {image_path} has {full_image}.")


def report_incomplete(
    problems: dict[str, str], policy: IncompletePolicy | str, what: str, argument: str = "incomplete"
) -> None:
    """
    Raise or warn about incomplete cases, listing all of them in one message.

    Args:
        problems: ``{case_id: what is missing}``; nothing happens when empty.
        policy: ``"error"`` raises, ``"skip"`` / ``"keep"`` warn (the caller leaves the cases out or keeps them).
        what: what the cases lack, for the message (e.g. ``"a label file"``).
        argument: the reader's argument that sets ``policy``, named in the error. Defaults to ``"incomplete"``.

    Raises:
        ValueError: with ``"error"``.
    """
    if not problems:
        return
    listing = "; ".join(f"{case}: {detail}" for case, detail in problems.items())
    if policy == IncompletePolicy.ERROR:
        raise ValueError(f"{len(problems)} case(s) lack {what}: {listing}. Pass {argument}='skip' to leave them out.")
    verb = "skipped" if policy == IncompletePolicy.SKIP else "kept with what they have"
    warnings.warn(f"{len(problems)} case(s) lack {what} and were {verb}: {listing}", stacklevel=3)


def _files_in(value: Any) -> list[str]:
    """Every path in a data-list value (a path, a list of paths, nested lists/dicts of paths)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [p for v in value.values() for p in _files_in(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _files_in(v)]
    return []


def finish_datalist(
    entries: list[dict[str, Any]],
    lacking: dict[str, str],
    incomplete: IncompletePolicy | str,
    root: str,
    expected: str,
    num_folds: int,
    fold_method: str,
    seed: int,
    check_shapes: bool,
    label_keys: Sequence[str] = ("label",),
) -> list[dict[str, Any]]:
    """
    The common end of the CT readers: report incomplete cases, refuse an empty result, assign folds by case and
    compare the label files' shapes with their image from the headers.

    Args:
        entries: complete entries with ``"image"``, ``"case"`` and the ``label_keys``; sorted here by case.
        lacking: ``{case: what is missing}`` for the incomplete cases found.
        incomplete: ``"error"`` or ``"skip"``.
        root: the data-set folder, for messages.
        expected: the layout that was looked for, for the message when nothing was found.
        num_folds: see :py:func:`monai_dml.data.assign_folds`.
        fold_method: see :py:func:`monai_dml.data.assign_folds`.
        seed: see :py:func:`monai_dml.data.assign_folds`.
        check_shapes: compare shapes.
        label_keys: keys whose files (paths, lists or dicts of paths) must match the image. Defaults to ``("label",)``.

    Returns:
        the entries with ``"fold"``, sorted by case.

    Raises:
        ValueError: as :py:func:`report_incomplete`, when no case was found, or for a shape mismatch.
    """
    policy = look_up_option(incomplete, IncompletePolicy, "incomplete")
    if policy == IncompletePolicy.KEEP:
        raise ValueError("incomplete must be 'error' or 'skip' (a case without its label cannot be kept).")
    report_incomplete(lacking, policy, "a label file")
    if not entries:
        raise ValueError(f"dataset_dir {root} holds no case: expected {expected}.")
    entries = sorted(entries, key=lambda e: natural_key(e["case"]))
    folds = assign_folds([e["case"] for e in entries], num_folds, fold_method, seed)
    for entry in entries:
        entry["fold"] = folds[entry["case"]]
        if check_shapes:
            shape = read_nifti_shape(entry["image"])
            for key in label_keys:
                for path in _files_in(entry.get(key)):
                    check_label_shape(entry["image"], path, image_shape=shape)
    return entries
