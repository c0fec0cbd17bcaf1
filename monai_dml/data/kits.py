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
"""Data lists of KiTS19 and KiTS21/23 (kidney tumour CT), with the per-instance annotations of KiTS21/23."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Any

from monai_dml.data.folds import FoldMethod, natural_key
from monai_dml.data.utils import IncompletePolicy, check_dataset_dir, finish_datalist
from monai_dml.transforms.layout import KITS_LABELS

__all__ = ["KITS_LABELS", "kits_datalist"]

# KITS_LABELS (KiTS19 has kidney and tumour; KiTS21/23 add cyst) is defined beside KiTSAnnotations, which paints
# them, since transforms sit below data; it stays public here

_CASE = re.compile(r"^case_\d+$")
_IMAGING = ("imaging.nii.gz", "imaging.nii")
# KiTS19 and KiTS23: segmentation.nii.gz; KiTS21: aggregated_MAJ_seg.nii.gz (majority vote of the annotations)
_SEGMENTATION = ("segmentation.nii.gz", "segmentation.nii", "aggregated_MAJ_seg.nii.gz")
# KiTS23: instances/; KiTS21: segmentations/
_INSTANCE_DIRS = ("instances", "segmentations")
_ANNOTATION = re.compile(r"^(kidney|tumor|cyst)_instance-(\d+)_annotation-(\d+)\.nii(\.gz)?$")


def _cases_root(root: str) -> str:
    """``root`` when it holds ``case_XXXXX`` folders, else its ``data/`` or ``dataset/`` subfolder that does."""
    for base in (root, os.path.join(root, "data"), os.path.join(root, "dataset")):
        if os.path.isdir(base) and any(_CASE.match(d) for d in os.listdir(base)):
            return base
    return root


def _annotations(case_dir: str) -> dict[str, list[list[str]]]:
    """``{structure: [[annotation files of instance 1], [instance 2], ...]}`` of one case (empty for KiTS19)."""
    found: dict[str, dict[int, dict[int, str]]] = defaultdict(lambda: defaultdict(dict))
    for name in _INSTANCE_DIRS:
        folder = os.path.join(case_dir, name)
        if not os.path.isdir(folder):
            continue
        for f in os.listdir(folder):
            if (m := _ANNOTATION.match(f)) is not None:
                found[m.group(1)][int(m.group(2))][int(m.group(3))] = os.path.join(folder, f)
        break
    return {
        structure: [[files[a] for a in sorted(files)] for _, files in sorted(instances.items())]
        for structure, instances in sorted(found.items(), key=lambda kv: KITS_LABELS[kv[0]])
    }


def kits_datalist(
    dataset_dir: str | os.PathLike,
    num_folds: int = 5,
    fold_method: FoldMethod | str = FoldMethod.CONTIGUOUS,
    seed: int = 0,
    incomplete: IncompletePolicy | str = IncompletePolicy.ERROR,
    check_shapes: bool = True,
    annotations: bool = True,
) -> list[dict[str, Any]]:
    """
    List the cases of KiTS19, KiTS21 or KiTS23.

    Layout (``dataset_dir``, or its ``data/`` or ``dataset/`` subfolder, holds the case folders)::

        case_00000/imaging.nii.gz
                  /segmentation.nii.gz          (KiTS19, KiTS23; KiTS21: aggregated_MAJ_seg.nii.gz)
                  /instances/kidney_instance-1_annotation-1.nii.gz, ... (KiTS23; KiTS21: segmentations/)

    Labels: 0 background, 1 kidney, 2 tumour, 3 cyst (KiTS21/23 only; ``KITS_LABELS``). Volumes are stored
    ``(z, y, x)``, axial first, unlike LiTS; ``monai_dml.data.ct_3d_transforms`` reorients both.

    Args:
        dataset_dir: the KiTS folder.
        num_folds: number of cross-validation folds. Defaults to 5.
        fold_method: see :py:func:`monai_dml.data.assign_folds`. Defaults to ``"contiguous"`` (the paper's).
        seed: salt for ``fold_method="hash"``. Defaults to 0.
        incomplete: a case with ``imaging`` but no segmentation (KiTS19's test cases 210-299 are such):
            {``"error"``, ``"skip"``}. Defaults to ``"error"``.
        check_shapes: compare the segmentation's and the annotations' shapes with the image from the NIfTI
            headers. Defaults to True.
        annotations: add ``"annotations"`` for cases with instance files. Defaults to True.

    Returns:
        entries ``{"image": path, "label": path, "case": "case_XXXXX", "fold": int}``, sorted by case; KiTS21/23
        cases also have ``"annotations": {"kidney": [[a1, a2, a3], ...], "tumor": [...], "cyst": [...]}`` (one list
        per instance, the annotation files in annotation order), which
        :py:class:`monai_dml.transforms.KiTSAnnotationsd` turns into a ``(A, spatial...)`` stack of per-annotator
        label maps.

    Raises:
        FileNotFoundError: when ``dataset_dir`` does not exist.
        ValueError: when no case is found, for incomplete cases with ``"error"``, a label or annotation whose
            shape differs from its image, or an unreadable NIfTI file (each naming the path).

    Warns:
        UserWarning: listing the cases left out with ``incomplete="skip"``.
    """
    root = check_dataset_dir(dataset_dir)
    base = _cases_root(root)
    entries: list[dict[str, Any]] = []
    lacking: dict[str, str] = {}
    for case in sorted((d for d in os.listdir(base) if _CASE.match(d)), key=natural_key):
        case_dir = os.path.join(base, case)
        if not os.path.isdir(case_dir):
            continue
        files = set(os.listdir(case_dir))
        image = next((os.path.join(case_dir, f) for f in _IMAGING if f in files), None)
        label = next((os.path.join(case_dir, f) for f in _SEGMENTATION if f in files), None)
        if image is None:
            lacking[case] = f"no imaging.nii[.gz] in {case_dir}"
            continue
        if label is None:
            lacking[case] = f"no segmentation.nii[.gz] or aggregated_MAJ_seg.nii.gz beside {image}"
            continue
        entry: dict[str, Any] = {"image": image, "label": label, "case": case}
        if annotations and (found := _annotations(case_dir)):
            entry["annotations"] = found
        entries.append(entry)
    expected = "case_XXXXX/imaging.nii.gz with segmentation.nii.gz"
    return finish_datalist(
        entries,
        lacking,
        incomplete,
        root,
        expected,
        num_folds,
        fold_method,
        seed,
        check_shapes,
        ("label", "annotations"),
    )
