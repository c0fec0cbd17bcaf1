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
"""LiTS and KiTS (Wang et al. 2023, Sect. 3.1 and Table 4) in 2D or 3D: the data facts of the CT bundles."""

from __future__ import annotations

import os
from typing import Any

from monai_dml.bundle.data import BundleData, positive_int
from monai_dml.bundle.outputs import case_id
from monai_dml.bundle.recipes import LabelMode
from monai_dml.bundle.utils import check_option
from monai_dml.data import build_slice_index, kits_datalist, lits_datalist

__all__ = ["CTData"]


class CTData(BundleData):
    """
    Background, organ and tumour with a softmax. Entries ``{"image", "label", "case", "fold"}``, plus ``teacher``
    (the teacher's ``<case>_prob.nii.gz`` in ``teacher_dir``) for ``label_mode="kd"`` and ``annotations`` (the
    KiTS21/23 per-annotator files) for ``label_mode="raters"``. 2D trains on the slices of the training volumes
    that hold ``slice_labels``.
    """

    label_modes: tuple[str, ...] = (LabelMode.HARD, LabelMode.LS, LabelMode.KD)

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        layout: str = "lits",
        spatial_dims: int = 2,
        num_classes: int = 3,
        slice_labels: tuple[int, ...] | list[int] = (2,),
        teacher_dir: str | os.PathLike | None = None,
        synthetic_depth: int = 48,
        label_mode: str = "hard",
        **kwargs: Any,
    ) -> None:
        """
        Args:
            dataset_dir: the LiTS (or MSD Task03_Liver) or KiTS folder.
            layout: ``"lits"``, ``"kits19"`` or ``"kits21"`` (KiTS21/23 with per-annotator instance files).
            spatial_dims: 2 (slices) or 3 (patches).
            num_classes: output channels including background. Defaults to 3.
            slice_labels: label values whose slices train 2D. Defaults to ``(2,)`` (tumour, the paper's).
            teacher_dir: folder of the teacher's ``<case>_prob.nii.gz`` (written by ``inference.json``), for
                ``label_mode="kd"``.
            synthetic_depth: slices of the synthetic volumes. Defaults to 48.
            label_mode: ``"hard"``, ``"ls"``, ``"kd"``, or ``"raters"`` (3D with KiTS21/23 annotations).
            kwargs: the arguments of :py:class:`monai_dml.bundle.BundleData`.

        Raises:
            ValueError: naming the config key of an invalid layout, dimension, class count, a kd mode without
                ``teacher_dir``, and the errors of :py:class:`monai_dml.bundle.BundleData`.
        """
        self.layout = check_option(layout, ("lits", "kits19", "kits21"), "layout")
        self.spatial_dims = int(spatial_dims)
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"config key 'spatial_dims' must be 2 or 3, got {spatial_dims}.")
        if self.spatial_dims == 3 and self.layout == "kits21":
            self.label_modes = (*CTData.label_modes, LabelMode.RATERS)
        super().__init__(dataset_dir, label_mode=label_mode, **kwargs)
        self.num_classes = positive_int(num_classes, "num_classes")
        if self.num_classes < 2:
            raise ValueError(
                f"config key 'num_classes' must be at least 2 (background and a class), got {num_classes}."
            )
        self.slice_labels = [int(v) for v in slice_labels]
        self.teacher_dir = None if teacher_dir is None else os.fspath(teacher_dir)
        if "teacher" in self.recipe.extra_keys and not self.teacher_dir:
            raise ValueError(
                f"config key 'teacher_dir' must name the folder of the teacher's <case>_prob.nii.gz files for "
                f"label_mode {self.label_mode!r} (write them with the teacher bundle's inference.json)."
            )
        self.synthetic_depth = positive_int(synthetic_depth, "synthetic_depth")

    @property
    def out_channels(self) -> int:
        """``num_classes`` (softmax)."""
        return self.num_classes

    def generate(self, out_dir: str) -> None:
        """The synthetic layout."""
        from monai_dml.data.synthetic import generate_dataset

        generate_dataset(
            self.layout, out_dir, self.synthetic_cases, self.synthetic_size, self.synthetic_depth, self.seed
        )

    def read_datalist(self) -> list[dict[str, Any]]:
        """:py:func:`monai_dml.data.lits_datalist` or :py:func:`~monai_dml.data.kits_datalist`, plus teachers."""
        raters = "raters" in self.recipe.extra_keys
        if self.layout == "lits":
            entries = lits_datalist(self.dataset_dir, num_folds=self.num_folds)
        else:
            entries = kits_datalist(self.dataset_dir, num_folds=self.num_folds, annotations=raters)
            if raters and not all("annotations" in e for e in entries):
                missing = [e["case"] for e in entries if "annotations" not in e]
                raise ValueError(
                    f"config key 'label_mode': {self.label_mode!r} needs KiTS21/23 annotation files, missing for "
                    f"{missing[:5]}."
                )
        if "teacher" in self.recipe.extra_keys:
            assert self.teacher_dir is not None
            for entry in entries:
                teacher = os.path.join(self.teacher_dir, f"{case_id(entry['image'])}_prob.nii.gz")
                if not os.path.isfile(teacher):
                    raise FileNotFoundError(
                        f"config key 'teacher_dir': no teacher probabilities for case {entry['case']}: {teacher}."
                    )
                entry["teacher"] = teacher
        return entries

    def train_data(self) -> list[dict[str, Any]]:
        """3D: the training volumes; 2D: their slices with ``slice_labels`` (cached slice index)."""
        volumes = self.train_cases()
        if self.spatial_dims == 3:
            return volumes
        return build_slice_index(volumes, labels=self.slice_labels, progress=False, num_classes=self.num_classes)

    def check_files(self) -> None:
        """
        The checks of :py:class:`monai_dml.bundle.BundleData`, and in 2D the slice index of the training volumes
        (read once and cached): a label volume that cannot be read or holds values outside ``[0, num_classes)``
        (a 0/255 mask) fails before training, naming the file. 3D volumes are read when the data loader loads them.
        """
        self.datalist()
        if self.spatial_dims == 2:
            self.train_data()
