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
"""QUBIQ 2020 in 2D (Wang et al. 2023, Sect. 3.1 and Table 2): the data facts of ``bundles/qubiq_2d``."""

from __future__ import annotations

import os
from typing import Any

from monai_dml.bundle.data import BundleData
from monai_dml.bundle.recipes import LabelMode
from monai_dml.bundle.utils import check_option
from monai_dml.data import check_qubiq_files, qubiq_datalist
from monai_dml.data.utils import IncompletePolicy

__all__ = ["QUBIQ_TASKS", "QubiqData"]

# sub-data set -> number of tasks (QUBIQ 2020)
QUBIQ_TASKS = {"prostate": 2, "brain-growth": 1, "brain-tumor": 3, "kidney": 1}


class QubiqData(BundleData):
    """
    One QUBIQ sub-data set and task: entries ``{"image", "raters", "case", "fold"}``. The configs fuse the raters
    into ``label`` by ``label_mode`` and evaluate against their majority vote and mean.
    """

    layout = "QUBIQ"
    # every mode whose source the raters give: the fusions, and the majority vote as hard or smoothed label
    label_modes: tuple[str, ...] = tuple(m.value for m in LabelMode if m not in (LabelMode.KD, LabelMode.RATERS))

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        qubiq_dataset: str = "kidney",
        qubiq_task: int = 1,
        label_mode: str = "uniform",
        missing_raters: str = "skip",
        **kwargs: Any,
    ) -> None:
        """
        Args:
            dataset_dir: the QUBIQ ``training_data_v2`` folder (holding ``prostate``, ``kidney``, ...).
            qubiq_dataset: the sub-data set: ``"prostate"``, ``"brain-growth"``, ``"brain-tumor"`` or ``"kidney"``.
            qubiq_task: its task number (prostate 1-2, brain-tumor 1-3, else 1).
            label_mode: the training target; defaults to ``"uniform"`` (the rater mean).
            missing_raters: a case with fewer rater files than its data set has raters (as one real prostate
                case): ``"skip"`` leaves it out with a warning naming it (the default, as the paper's code),
                ``"error"`` fails with the case and the missing files, ``"keep"`` fuses the raters it has (the
                majority-vote threshold then depends on that case's rater count). See
                :py:func:`monai_dml.data.qubiq_datalist`.
            kwargs: the arguments of :py:class:`monai_dml.bundle.BundleData`.

        Raises:
            ValueError: naming ``qubiq_dataset``, ``qubiq_task`` or ``missing_raters`` when invalid, and the errors of
                :py:class:`monai_dml.bundle.BundleData`.
        """
        super().__init__(dataset_dir, label_mode=label_mode, **kwargs)
        self.qubiq_dataset = check_option(qubiq_dataset, tuple(QUBIQ_TASKS), "qubiq_dataset")
        tasks = QUBIQ_TASKS[self.qubiq_dataset]
        if not 1 <= int(qubiq_task) <= tasks:
            raise ValueError(f"config key 'qubiq_task': {self.qubiq_dataset} has tasks 1-{tasks}, got {qubiq_task}.")
        self.qubiq_task = int(qubiq_task)
        self.missing_raters = check_option(missing_raters, [p.value for p in IncompletePolicy], "missing_raters")

    @property
    def in_channels(self) -> int:
        """Four MR modalities for brain-tumor, else one channel."""
        return 4 if self.qubiq_dataset == "brain-tumor" else 1

    def generate(self, out_dir: str) -> None:
        """The synthetic QUBIQ layout with ``qubiq_dataset`` only."""
        from monai_dml.data.synthetic import generate_qubiq

        generate_qubiq(
            out_dir, self.synthetic_cases, self.synthetic_size, seed=self.seed, datasets=[self.qubiq_dataset]
        )

    def check_files(self) -> None:
        """
        Read every image and rater file in full (:py:func:`monai_dml.data.check_qubiq_files`): a corrupt or
        truncated file, NaN/Inf, rater masks other than 0/1 (0/255 included) or an image with other than
        :py:attr:`in_channels` channels fails before training, naming the file. The 2D sets are small (seconds).
        """
        check_qubiq_files(self.datalist(), in_channels=self.in_channels)

    def read_datalist(self) -> list[dict[str, Any]]:
        """:py:func:`monai_dml.data.qubiq_datalist` of the sub-data set and task."""
        return qubiq_datalist(
            self.dataset_dir,
            datasets=[self.qubiq_dataset],
            tasks=[self.qubiq_task],
            num_folds=self.num_folds,
            missing_raters=self.missing_raters,
        )
