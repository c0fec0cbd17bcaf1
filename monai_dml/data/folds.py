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
"""Deterministic k-fold cross-validation splits by case: every case in exactly one validation fold."""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from monai.utils import StrEnum

from monai_dml.utils import look_up_option

__all__ = ["FoldMethod", "assign_folds", "natural_key", "split_folds"]


class FoldMethod(StrEnum):
    """
    How cases are assigned to folds.

    - ``CONTIGUOUS``: the paper's protocol (its reference code): cases in natural order, ``n // k`` consecutive
      cases per fold, the remainder in the last fold.
    - ``BALANCED``: cases in natural order, consecutive blocks whose sizes differ by at most one.
    - ``HASH``: fold = SHA-256 of ``"seed:case"`` modulo k; a case keeps its fold when other cases are added or
      removed, at the cost of unequal fold sizes.
    """

    CONTIGUOUS = "contiguous"
    BALANCED = "balanced"
    HASH = "hash"


def natural_key(text: str) -> list[Any]:
    """
    Sort key that orders the digit runs of a string by value: ``case2 < case10``, ``volume-9 < volume-10``.

    Example:
        >>> sorted(["case10", "case2", "case1"], key=natural_key)
        ['case1', 'case2', 'case10']
    """
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def assign_folds(
    case_ids: Iterable[str], num_folds: int = 5, method: FoldMethod | str = FoldMethod.CONTIGUOUS, seed: int = 0
) -> dict[str, int]:
    """
    Assign each case to one of ``num_folds`` validation folds, deterministically.

    Args:
        case_ids: case identifiers (duplicates are counted once).
        num_folds: number of folds k. Defaults to 5 (the paper's 5-fold cross-validation).
        method: {``"contiguous"``, ``"balanced"``, ``"hash"``}, see :py:class:`FoldMethod`. Defaults to
            ``"contiguous"``.
        seed: salt of the ``"hash"`` method; ignored by the others. Defaults to 0.

    Returns:
        ``{case_id: fold}`` with folds in ``[0, num_folds)``.

    Raises:
        ValueError: for ``num_folds < 2``, an unknown ``method``, or fewer cases than folds with an ordered method.

    Warns:
        UserWarning: when ``"hash"`` leaves a fold without cases.

    Example:
        >>> assign_folds([f"case{i}" for i in range(1, 8)], num_folds=3)
        {'case1': 0, 'case2': 0, 'case3': 1, 'case4': 1, 'case5': 2, 'case6': 2, 'case7': 2}
    """
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}.")
    kind = look_up_option(method, FoldMethod, "method")
    ids = sorted(set(case_ids), key=natural_key)
    if kind == FoldMethod.HASH:
        folds = {c: int(hashlib.sha256(f"{seed}:{c}".encode()).hexdigest(), 16) % num_folds for c in ids}
        empty = sorted(set(range(num_folds)) - set(folds.values()))
        if ids and empty:
            warnings.warn(f"fold assignment by hash left folds {empty} without cases ({len(ids)} cases).", stacklevel=2)
        return folds
    if len(ids) < num_folds:
        raise ValueError(f"need at least num_folds={num_folds} cases for method={kind.value!r}, got {len(ids)}.")
    n = len(ids)
    if kind == FoldMethod.CONTIGUOUS:
        size = n // num_folds
        return {c: min(i // size, num_folds - 1) for i, c in enumerate(ids)}
    return {c: (i * num_folds) // n for i, c in enumerate(ids)}


def split_folds(
    datalist: Sequence[dict[str, Any]], fold: int, fold_key: str = "fold"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """
    Split a data list into training and validation entries for one cross-validation fold.

    From a bundle config: ``"$monai_dml.data.split_folds(@datalist, @fold)[1]"`` is the validation list.

    Args:
        datalist: entries that carry their fold under ``fold_key``.
        fold: the validation fold.
        fold_key: the key holding each entry's fold. Defaults to ``"fold"``.

    Returns:
        ``(training, validation)``: the entries of the other folds and of ``fold``, in their original order.

    Raises:
        ValueError: when an entry has no ``fold_key`` or no entry is in ``fold``.
    """
    training: list[dict[str, Any]] = []
    validation: list[dict[str, Any]] = []
    for i, entry in enumerate(datalist):
        if fold_key not in entry:
            raise ValueError(f"datalist entry {i} ({entry.get('case', entry)}) has no {fold_key!r} key.")
        (validation if int(entry[fold_key]) == fold else training).append(entry)
    if not validation:
        found = sorted({int(e[fold_key]) for e in datalist})
        raise ValueError(f"no datalist entry is in fold={fold}; the folds present are {found}.")
    return training, validation
