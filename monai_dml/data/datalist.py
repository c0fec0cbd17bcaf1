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
"""Writing and reading data lists as JSON files in the form of MONAI's model-zoo bundles and Auto3DSeg."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from monai_dml.data.folds import split_folds

__all__ = ["PATH_KEYS", "load_datalist", "write_datalist"]

# keys whose values are file paths (a path, a list of paths, or a dictionary of lists of paths)
PATH_KEYS = ("image", "label", "raters", "annotations")


def _map_paths(value: Any, fn: Any) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_paths(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_paths(v, fn) for v in value]
    return value


def write_datalist(
    datalist: Sequence[dict[str, Any]],
    path: str | os.PathLike,
    fold: int | None = None,
    base_dir: str | os.PathLike | None = None,
    path_keys: Sequence[str] = PATH_KEYS,
) -> str:
    """
    Write a data list as a JSON file.

    Without ``fold``, every entry goes to ``"training"`` with its ``"fold"`` key, as in MONAI Auto3DSeg data lists;
    with ``fold``, the entries of that fold go to ``"validation"`` and the others to ``"training"``, as in the
    model-zoo bundles. Paths under ``path_keys`` are written relative to ``base_dir``, so the file moves with the
    data; :py:func:`load_datalist` makes them absolute again.

    Args:
        datalist: entries from one of the readers.
        path: the JSON file to write (its folder is created).
        fold: a validation fold to split off, or None. Defaults to None.
        base_dir: the folder paths are made relative to; None uses the JSON file's folder.
        path_keys: keys holding file paths. Defaults to ``("image", "label", "raters", "annotations")``.

    Returns:
        the path written.

    Raises:
        ValueError: as :py:func:`monai_dml.data.split_folds` when ``fold`` is given.
    """
    out_path = os.path.abspath(os.fspath(path))
    base = os.path.abspath(os.fspath(base_dir)) if base_dir is not None else os.path.dirname(out_path)

    def relative(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            k: _map_paths(v, lambda p: os.path.relpath(os.path.abspath(p), base)) if k in path_keys else v
            for k, v in entry.items()
        }

    if fold is None:
        content: dict[str, Any] = {"training": [relative(e) for e in datalist]}
    else:
        training, validation = split_folds(datalist, fold)
        content = {"training": [relative(e) for e in training], "validation": [relative(e) for e in validation]}
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(content, f, indent=2)
    return out_path


def load_datalist(
    path: str | os.PathLike,
    key: str = "training",
    base_dir: str | os.PathLike | None = None,
    path_keys: Sequence[str] = PATH_KEYS,
) -> list[dict[str, Any]]:
    """
    Read one list of a data-list JSON file and make its paths absolute.

    Unlike ``monai.data.load_decathlon_datalist``, which resolves only ``image`` and ``label``, this also resolves
    the lists of rater files (``raters``) and the KiTS21/23 ``annotations``.

    Args:
        path: the JSON file.
        key: the list to read (``"training"``, ``"validation"``, ...). Defaults to ``"training"``.
        base_dir: the folder relative paths start from; None uses the JSON file's folder.
        path_keys: keys holding file paths. Defaults to ``("image", "label", "raters", "annotations")``.

    Returns:
        the entries, with absolute paths.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when it is not valid JSON or has no list under ``key`` (naming the file and the keys found).
    """
    in_path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(in_path):
        raise FileNotFoundError(f"datalist file not found: {in_path}")
    try:
        with open(in_path) as f:
            content = json.load(f)
    except ValueError as e:
        raise ValueError(f"datalist file {in_path} is not valid JSON: {e}") from e
    if not isinstance(content, dict) or not isinstance(content.get(key), list):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise ValueError(f"datalist file {in_path} has no list {key!r}; found {found}.")
    base = os.path.abspath(os.fspath(base_dir)) if base_dir is not None else os.path.dirname(in_path)
    return [
        {
            k: _map_paths(v, lambda p: os.path.normpath(os.path.join(base, p))) if k in path_keys else v
            for k, v in entry.items()
        }
        for entry in content[key]
    ]
