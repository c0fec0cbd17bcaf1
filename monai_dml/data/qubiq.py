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
"""Data lists of the QUBIQ 2020 (``training_data_v2``) and QUBIQ 2021 (``training_data_v3``) multi-rater sets."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch

from monai_dml.data.folds import FoldMethod, assign_folds, natural_key
from monai_dml.data.utils import (
    IncompletePolicy,
    check_dataset_dir,
    check_image_file,
    check_label_shape,
    check_mask_file,
    is_nifti,
    read_nifti_shape,
    report_incomplete,
)
from monai_dml.transforms import LoadRaters, rater_dice_to_majority
from monai_dml.utils import look_up_option

__all__ = [
    "QUBIQ_DATASETS",
    "QUBIQ_RATERS",
    "QUBIQ_TABLE1",
    "check_qubiq_files",
    "qubiq_datalist",
    "qubiq_rater_agreement",
]

# QUBIQ folder names: the four of 2020, plus the two 3D CT sets of 2021
QUBIQ_DATASETS = ("prostate", "brain-growth", "brain-tumor", "kidney", "pancreas", "pancreatic-lesion")
# raters per case of the 2020 sets (challenge page; one prostate case has 5); unknown sets use the most found
QUBIQ_RATERS = {"prostate": 6, "brain-growth": 7, "brain-tumor": 3, "kidney": 3}
# Wang et al. (2023), Table 1: sub-data set -> (folder, task, raters, mean rater-vs-majority Dice in percent)
QUBIQ_TABLE1: dict[str, tuple[str, int, int, float]] = {
    "D1": ("prostate", 1, 6, 96.49),
    "D2": ("prostate", 2, 6, 92.17),
    "D3": ("brain-growth", 1, 7, 91.20),
    "D4": ("brain-tumor", 1, 3, 95.44),
    "D5": ("brain-tumor", 2, 3, 68.73),
    "D6": ("brain-tumor", 3, 3, 92.71),
    "D7": ("kidney", 1, 3, 97.41),
}
_RATER_FILE = re.compile(r"^task(\d+)_seg(\d+)\.nii(\.gz)?$")
_IMAGE_FILES = ("image.nii.gz", "image.nii")


def _case_dirs(dataset_root: str, split: str) -> list[str]:
    """The case folders of one QUBIQ dataset folder: ``<dataset>/<split>/caseNN`` or, without a split level,
    ``<dataset>/caseNN``."""
    base = os.path.join(dataset_root, split) if os.path.isdir(os.path.join(dataset_root, split)) else dataset_root
    dirs = [os.path.join(base, d) for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))]
    return sorted((d for d in dirs if any(is_nifti(f) for f in os.listdir(d))), key=natural_key)


def qubiq_datalist(
    dataset_dir: str | os.PathLike,
    datasets: Sequence[str] | None = None,
    tasks: Sequence[int] | None = None,
    split: str = "Training",
    num_folds: int = 5,
    fold_method: FoldMethod | str = FoldMethod.CONTIGUOUS,
    seed: int = 0,
    missing_raters: IncompletePolicy | str = IncompletePolicy.SKIP,
    incomplete: IncompletePolicy | str = IncompletePolicy.ERROR,
    check_shapes: bool = True,
) -> list[dict[str, Any]]:
    """
    List the cases of a QUBIQ data set: one entry per case and task.

    Layout (``dataset_dir`` is the ``training_data_v2`` or ``training_data_v3`` folder)::

        <dataset_dir>/<dataset>/<split>/caseNN/image.nii.gz
                                              /taskTT_segRR.nii.gz   (task TT, rater RR; .nii also accepted)

    A missing ``<split>`` level (``<dataset>/caseNN``) is accepted too. Folds are assigned per dataset and by case,
    so all tasks of a case share a fold.

    Args:
        dataset_dir: the folder holding the dataset folders (``prostate``, ``brain-growth``, ...).
        datasets: which dataset folders to read; None reads every subfolder that holds cases.
        tasks: which task numbers to keep; None keeps all.
        split: the split folder, ``"Training"`` or ``"Validation"``. Defaults to ``"Training"``.
        num_folds: number of cross-validation folds. Defaults to 5.
        fold_method: see :py:func:`monai_dml.data.assign_folds`. Defaults to ``"contiguous"`` (the paper's).
        seed: salt for ``fold_method="hash"``. Defaults to 0.
        missing_raters: a case/task with fewer rater files than the dataset's raters (``QUBIQ_RATERS``, or the most
            found): {``"skip"``, ``"keep"``, ``"error"``}. Defaults to ``"skip"``, as the paper's reference code
            leaves out the prostate case with 5 raters (the majority-vote threshold depends on R).
        incomplete: a case with an image but no rater file, or rater files but no image: {``"error"``,
            ``"skip"``}. Defaults to ``"error"``.
        check_shapes: compare every rater file's shape with its image from the NIfTI headers. Defaults to True.

    Returns:
        entries ``{"image": path, "raters": [path, ...], "case": "<dataset>/caseNN", "dataset": str, "task": int,
        "fold": int}``, sorted by dataset, case and task. ``image`` is ``(H, W)``, ``(H, W, 1)``, ``(H, W, 4)``
        (brain-tumor: four MR modalities in the last axis) or 3D for the 2021 CT sets.

    Raises:
        FileNotFoundError: when ``dataset_dir`` or a requested dataset folder does not exist.
        ValueError: when no case is found, for incomplete cases with ``"error"``, a rater file whose shape differs
            from its image, or an unreadable NIfTI file (each naming the path).

    Warns:
        UserWarning: listing the cases left out (``"skip"``) or kept with fewer raters (``"keep"``).

    Example:
        >>> data = qubiq_datalist("training_data_v2", datasets=["kidney"])  # doctest: +SKIP
        >>> data[0]["case"], len(data[0]["raters"]), data[0]["fold"]  # doctest: +SKIP
        ('kidney/case01', 3, 0)
    """
    root = check_dataset_dir(dataset_dir)
    missing_policy = look_up_option(missing_raters, IncompletePolicy, "missing_raters")
    incomplete_policy = look_up_option(incomplete, IncompletePolicy, "incomplete")
    if incomplete_policy == IncompletePolicy.KEEP:
        raise ValueError("incomplete must be 'error' or 'skip' (a case without image or raters cannot be kept).")
    if datasets is None:
        names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    else:
        names = list(datasets)
        for name in names:
            if not os.path.isdir(os.path.join(root, name)):
                present = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
                raise FileNotFoundError(
                    f"dataset_dir {root} has no QUBIQ dataset folder {name!r} ({os.path.join(root, name)}); "
                    f"folders found: {present}."
                )
    entries: list[dict[str, Any]] = []
    lacking: dict[str, str] = {}
    short: dict[str, str] = {}
    for name in names:
        found: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)  # (case, task) -> {rater: path}
        images: dict[str, str] = {}
        for case_dir in _case_dirs(os.path.join(root, name), split):
            case = f"{name}/{os.path.basename(case_dir)}"
            files = os.listdir(case_dir)
            image = next((os.path.join(case_dir, f) for f in _IMAGE_FILES if f in files), None)
            raters = [(m, f) for f in files if is_nifti(f) and (m := _RATER_FILE.match(f))]
            if image is None:
                lacking[case] = f"no image file in {case_dir}"
                continue
            if not raters:
                lacking[case] = f"no taskTT_segRR rater file beside {image}"
                continue
            images[case] = image
            for match, f in raters:
                task = int(match.group(1))
                if tasks is None or task in tasks:
                    found[(case, task)][int(match.group(2))] = os.path.join(case_dir, f)
        expected: dict[int, int] = defaultdict(int)
        for (_, task), raters_of in found.items():
            expected[task] = QUBIQ_RATERS.get(name, max(expected[task], len(raters_of)))
        kept: list[dict[str, Any]] = []
        for (case, task), raters_of in sorted(found.items(), key=lambda kv: (natural_key(kv[0][0]), kv[0][1])):
            if len(raters_of) < expected[task]:
                absent = sorted(set(range(1, expected[task] + 1)) - set(raters_of))
                short[f"{case} task {task}"] = f"{len(raters_of)} of {expected[task]} raters, missing seg {absent}"
                if missing_policy != IncompletePolicy.KEEP:
                    continue
            kept.append(
                {
                    "image": images[case],
                    "raters": [raters_of[r] for r in sorted(raters_of)],
                    "case": case,
                    "dataset": name,
                    "task": task,
                }
            )
        if kept:
            folds = assign_folds([e["case"] for e in kept], num_folds, fold_method, seed)
            for entry in kept:
                entry["fold"] = folds[entry["case"]]
        entries.extend(kept)
    report_incomplete(lacking, incomplete_policy, "an image or rater files")
    report_incomplete(short, missing_policy, "rater files", argument="missing_raters")
    if not entries:
        raise ValueError(
            f"dataset_dir {root} holds no QUBIQ case: expected <dataset>/{split}/caseNN/image.nii.gz with "
            f"taskTT_segRR.nii.gz files (datasets looked at: {names})."
        )
    if check_shapes:
        shapes: dict[str, tuple[int, ...]] = {}
        for entry in entries:
            image = entry["image"]
            shape = shapes.setdefault(image, read_nifti_shape(image))
            for rater in entry["raters"]:
                check_label_shape(image, rater, channels_last=entry["dataset"] == "brain-tumor", image_shape=shape)
    return entries


def check_qubiq_files(datalist: Sequence[dict[str, Any]], in_channels: int | None = None) -> None:
    """
    Read every image and rater file of a QUBIQ data list in full, so that a bad file fails before training starts
    and names itself, instead of failing inside a data loader with no path: a corrupt or truncated file, NaN or Inf
    values, rater masks other than 0/1 (0/255 included, see :py:func:`monai_dml.data.utils.check_mask_file`) and,
    with ``in_channels``, a 2D image with another number of channels. Each file is read once; the 2D QUBIQ 2020
    sets are small (a few hundred slices), so this costs seconds.

    Args:
        datalist: entries from :py:func:`qubiq_datalist`.
        in_channels: the channels each 2D image must have: 1 for ``(H, W)`` or ``(H, W, 1)``, ``C`` for
            ``(H, W, C)`` (brain-tumor: 4). None does not check.

    Raises:
        ValueError: naming the file (and, for the channels, the shape found).
        FileNotFoundError: for a file that no longer exists.
    """
    images: set[str] = set()
    raters: set[str] = set()
    for entry in datalist:
        image = entry["image"]
        if image not in images:
            images.add(image)
            shape = check_image_file(image)
            if in_channels is not None:
                planar = list(shape)
                while len(planar) > 2 and planar[-1] == 1:
                    planar.pop()
                channels = planar[2] if len(planar) == 3 else 1
                if len(planar) > 3 or channels != in_channels:
                    expected = "(H, W) or (H, W, 1)" if in_channels == 1 else f"(H, W, {in_channels})"
                    raise ValueError(
                        f"image {image} has shape {shape} ({channels} channel(s) in the last axis), but the "
                        f"{entry.get('dataset', 'QUBIQ')} images here have {in_channels} channel(s): "
                        f"expected {expected}."
                    )
        for path in entry["raters"]:
            if path not in raters:
                raters.add(path)
                check_mask_file(path)


def qubiq_rater_agreement(
    datalist: Sequence[dict[str, Any]], loader: Callable[[Sequence[str]], Any] | None = None
) -> dict[str, float]:
    """
    Mean Dice of each rater against the majority vote, per dataset and task (the statistic of Wang et al. 2023,
    Table 1): the mean over cases of the mean over the case's raters, computed with
    :py:func:`monai_dml.transforms.rater_dice_to_majority`.

    Args:
        datalist: entries from :py:func:`qubiq_datalist`.
        loader: reads a list of rater files into a ``(R, spatial...)`` stack. Defaults to
            :py:class:`monai_dml.transforms.LoadRaters`.

    Returns:
        ``{"<dataset>/taskTT": dice}`` with ``dice`` in [0, 1].

    Raises:
        ValueError: for an empty ``datalist``, or a rater file that cannot be read (naming it).
    """
    if len(datalist) == 0:
        raise ValueError("datalist is empty: qubiq_rater_agreement needs at least one case.")
    load = LoadRaters() if loader is None else loader
    per_task: dict[str, list[float]] = defaultdict(list)
    for entry in datalist:
        dice = rater_dice_to_majority(torch.as_tensor(load(entry["raters"])))
        per_task[f"{entry['dataset']}/task{int(entry['task']):02d}"].append(float(dice.mean()))
    return {key: sum(values) / len(values) for key, values in sorted(per_task.items())}
