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
"""Data lists of LiTS (liver tumour CT), in its original form and as MSD Task03_Liver."""

from __future__ import annotations

import os
import re
from typing import Any

from monai_dml.data.folds import FoldMethod
from monai_dml.data.utils import IncompletePolicy, check_dataset_dir, finish_datalist, is_nifti, nifti_stem

__all__ = ["LITS_LABELS", "lits_datalist"]

# label values of LiTS and MSD Task03_Liver
LITS_LABELS = {"background": 0, "liver": 1, "tumor": 2}
_VOLUME = re.compile(r"^volume-(\d+)\.nii(\.gz)?$")
_SEGMENTATION = re.compile(r"^segmentation-(\d+)\.nii(\.gz)?$")


def _msd_images_dir(root: str) -> str | None:
    """The ``imagesTr`` folder of an MSD task under ``root`` (``root/imagesTr`` or ``root/Task03_Liver/imagesTr``)."""
    for base in (root, *sorted(os.path.join(root, d) for d in os.listdir(root))):
        if os.path.isdir(os.path.join(base, "imagesTr")):
            return os.path.join(base, "imagesTr")
    return None


def lits_datalist(
    dataset_dir: str | os.PathLike,
    num_folds: int = 5,
    fold_method: FoldMethod | str = FoldMethod.CONTIGUOUS,
    seed: int = 0,
    incomplete: IncompletePolicy | str = IncompletePolicy.ERROR,
    check_shapes: bool = True,
) -> list[dict[str, Any]]:
    """
    List the cases of LiTS, in either of its two distributed forms (found automatically):

    - LiTS: ``volume-N.nii`` and ``segmentation-N.nii`` anywhere below ``dataset_dir`` (the download splits them
      into ``Training Batch 1`` and ``Training Batch 2``); ``.nii.gz`` is accepted too. Case id ``"volume-N"``.
    - MSD Task03_Liver: ``imagesTr/liver_N.nii.gz`` and ``labelsTr/liver_N.nii.gz`` (in ``dataset_dir`` or one of
      its subfolders); the archive's ``._liver_N.nii.gz`` resource forks are ignored. Case id ``"liver_N"``.

    Labels: 0 background, 1 liver, 2 tumour (``LITS_LABELS``). Volumes are stored ``(x, y, z)``, axial last.

    Args:
        dataset_dir: the LiTS or MSD folder.
        num_folds: number of cross-validation folds. Defaults to 5.
        fold_method: see :py:func:`monai_dml.data.assign_folds`. Defaults to ``"contiguous"`` (the paper's).
        seed: salt for ``fold_method="hash"``. Defaults to 0.
        incomplete: a volume without its segmentation (or the reverse): {``"error"``, ``"skip"``}. Defaults to
            ``"error"``.
        check_shapes: compare each label's shape with its image from the NIfTI headers. Defaults to True.

    Returns:
        entries ``{"image": path, "label": path, "case": str, "fold": int}``, sorted by case number.

    Raises:
        FileNotFoundError: when ``dataset_dir`` does not exist.
        ValueError: when no case is found, for incomplete cases with ``"error"``, a label whose shape differs from
            its image, or an unreadable NIfTI file (each naming the path).

    Warns:
        UserWarning: listing the cases left out with ``incomplete="skip"``.
    """
    root = check_dataset_dir(dataset_dir)
    entries: list[dict[str, Any]] = []
    lacking: dict[str, str] = {}
    images_dir = _msd_images_dir(root)
    if images_dir is not None:
        labels_dir = os.path.join(os.path.dirname(images_dir), "labelsTr")
        labels = {nifti_stem(f): f for f in os.listdir(labels_dir) if is_nifti(f)} if os.path.isdir(labels_dir) else {}
        for name in sorted(f for f in os.listdir(images_dir) if is_nifti(f)):
            case, image = nifti_stem(name), os.path.join(images_dir, name)
            if case in labels:
                entries.append({"image": image, "label": os.path.join(labels_dir, labels[case]), "case": case})
            else:
                lacking[case] = f"no label in {labels_dir} for {image}"
        expected = "imagesTr/liver_N.nii.gz with labelsTr/liver_N.nii.gz"
    else:
        volumes: dict[str, str] = {}
        segmentations: dict[str, str] = {}
        for folder, _, files in os.walk(root):
            for f in files:
                if (m := _VOLUME.match(f)) is not None:
                    volumes[m.group(1)] = os.path.join(folder, f)
                elif (m := _SEGMENTATION.match(f)) is not None:
                    segmentations[m.group(1)] = os.path.join(folder, f)
        for number in sorted(set(volumes) | set(segmentations), key=int):
            case = f"volume-{number}"
            if number not in segmentations:
                lacking[case] = f"no segmentation-{number}.nii[.gz] for {volumes[number]}"
            elif number not in volumes:
                lacking[case] = f"no volume-{number}.nii[.gz] for {segmentations[number]}"
            else:
                entries.append({"image": volumes[number], "label": segmentations[number], "case": case})
        expected = "volume-N.nii with segmentation-N.nii (LiTS) or imagesTr/ and labelsTr/ (MSD Task03_Liver)"
    return finish_datalist(
        entries, lacking, incomplete, root, expected, num_folds, fold_method, seed, check_shapes, ("label",)
    )
