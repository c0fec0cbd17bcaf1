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
"""Argument checks and small pieces the bundle configs call, each error naming the config key at fault."""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Sequence
from typing import Any

from monai_dml.data.utils import is_nifti
from monai_dml.utils import as_bool as read_bool, look_up_option

__all__ = [
    "as_bool",
    "check_fold",
    "check_option",
    "inference_data",
    "require_checkpoint",
    "resume_from",
]


def check_option(value: Any, options: Sequence[str], key: str) -> str:
    """
    Return ``value`` lower-cased when it is one of ``options`` (any case): :py:func:`monai_dml.utils.look_up_option`
    with the error naming the config key.

    Raises:
        ValueError: naming the config ``key``, the value, the options and the closest option.
    """
    try:
        return str(look_up_option(value, [str(o).lower() for o in options], key))
    except ValueError as e:
        raise ValueError(f"config key {key!r}: {e}") from None


def as_bool(value: Any, key: str) -> bool:
    """
    A config switch as a bool (:py:func:`monai_dml.utils.as_bool`). Command-line overrides arrive as text
    (``--resume true``), and ``bool("false")`` is True, so the usual spellings are read: true/false, yes/no, on/off,
    1/0 (any case).

    Raises:
        ValueError: naming the config ``key`` for anything else.
    """
    try:
        return read_bool(value, key)
    except ValueError as e:
        raise ValueError(f"config key {key!r}: {e}") from None


def check_fold(fold: Any, num_folds: int) -> int:
    """
    Return ``fold`` as an int in ``[0, num_folds)``.

    Raises:
        ValueError: naming the ``fold`` key for a non-integer or out-of-range fold.
    """
    if isinstance(fold, bool) or not isinstance(fold, int | str) or re.fullmatch(r"-?\d+", str(fold).strip()) is None:
        raise ValueError(f"config key 'fold' must be an integer in 0-{num_folds - 1}, got {fold!r}.")
    if not 0 <= int(fold) < num_folds:
        raise ValueError(f"config key 'fold' must be in 0-{num_folds - 1} ({num_folds}-fold split), got {fold}.")
    return int(fold)


def require_checkpoint(path: str | os.PathLike, key: str = "checkpoint") -> str:
    """
    Return ``path`` when it is a file.

    Raises:
        FileNotFoundError: naming the config ``key`` and the path (train first, or override ``key``).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"config key {key!r}: checkpoint not found: {path}. Train the bundle first (configs/train.json) or "
            f"override {key!r} with the path of a saved model."
        )
    return path


def resume_from(resume: bool, path: str | os.PathLike) -> bool:
    """
    Whether to load the last checkpoint at ``path`` before training.

    Raises:
        FileNotFoundError: when ``resume`` is true and there is no checkpoint at ``path``.
    """
    if not as_bool(resume, "resume"):
        return False
    require_checkpoint(path, key="resume")
    return True


def inference_data(input_path: str | os.PathLike, image_key: str = "image") -> list[dict[str, str]]:
    """
    The images to run inference on: every NIfTI file in a folder (sorted), one NIfTI file, or a data-list JSON
    (a list of entries, or ``{"testing": [...]}``, each with ``image_key``; relative paths are taken from the JSON's
    folder).

    Returns:
        entries ``{image_key: path}`` (other keys of a data list are kept).

    Raises:
        FileNotFoundError: naming ``input_path`` when it does not exist or holds no NIfTI file.
        ValueError: for a JSON file that is not a data list of entries with ``image_key``.
    """
    path = os.fspath(input_path)
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "*")) if os.path.isfile(f) and is_nifti(f))
        if not files:
            raise FileNotFoundError(f"config key 'input_dir': no NIfTI image (.nii, .nii.gz) in {path}.")
        return [{image_key: f} for f in files]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config key 'input_dir': {path} is neither a folder, a NIfTI file nor a JSON list.")
    if is_nifti(path):
        return [{image_key: path}]
    with open(path) as f:
        content = json.load(f)
    entries = content.get("testing", content.get("validation")) if isinstance(content, dict) else content
    if not isinstance(entries, list) or not all(isinstance(e, dict) and image_key in e for e in entries):
        raise ValueError(f"config key 'input_dir': {path} is not a list of entries with an {image_key!r} key.")
    base = os.path.dirname(os.path.abspath(path))
    return [{**e, image_key: os.path.join(base, e[image_key])} for e in entries]
