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
"""
The data facts of a bundle: where its data set is (generated on first use when it is the synthetic default), its
cases per fold, and the keys its label mode needs. One object per bundle (``data`` in the configs) checks every
choice when it is built, so that a wrong key fails at once with the key's name. Transforms, the loss and metrics are
components of the configs themselves; the label mode's recipe is :py:data:`monai_dml.bundle.LABEL_RECIPES`.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from monai_dml.bundle.recipes import LabelRecipe, label_recipe
from monai_dml.bundle.utils import check_fold, inference_data

__all__ = ["BundleData", "positive_int"]


class BundleData:
    """
    The parts shared by every bundle's data set; subclasses add the layout (:py:class:`monai_dml.bundle.QubiqData`,
    :py:class:`monai_dml.bundle.CTData`).

    ``prepare()`` (the first ``initialize`` step) writes the synthetic data set when ``dataset_dir`` is the bundle's
    ``synthetic_dir`` and absent, and fails with the key's name for any other missing folder.
    """

    layout: str = ""
    label_modes: tuple[str, ...] = ()

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        synthetic_dir: str | os.PathLike | None = None,
        fold: int = 0,
        num_folds: int = 5,
        label_mode: str = "hard",
        synthetic_cases: int = 10,
        synthetic_size: int = 64,
        seed: int = 0,
    ) -> None:
        """
        Args:
            dataset_dir: the data set folder (config key ``dataset_dir``).
            synthetic_dir: the folder a synthetic data set is generated into when ``dataset_dir`` is this folder and
                does not exist yet; None never generates.
            fold: the validation fold, 0 to ``num_folds - 1``. The other folds train.
            num_folds: folds of the deterministic split. Defaults to 5 (the paper's).
            label_mode: see :py:class:`monai_dml.bundle.LabelMode`; the subclass lists the modes its data offer.
            synthetic_cases: cases of the generated data set. Defaults to 10.
            synthetic_size: in-plane size of the generated data set. Defaults to 64.
            seed: seed of the generated data set and of the folds. Defaults to 0.

        Raises:
            ValueError: naming the config key of an unknown label mode or a fold outside the split.
        """
        self.dataset_dir = os.fspath(dataset_dir)
        self.synthetic_dir = None if synthetic_dir is None else os.fspath(synthetic_dir)
        self.num_folds = int(num_folds)
        if self.num_folds < 2:
            raise ValueError(f"config key 'num_folds' must be at least 2, got {num_folds}.")
        self.fold = check_fold(fold, self.num_folds)
        self.recipe: LabelRecipe = label_recipe(label_mode, self.label_modes)
        self.label_mode = str(label_mode).lower()
        self.synthetic_cases = positive_int(synthetic_cases, "synthetic_cases")
        self.synthetic_size = positive_int(synthetic_size, "synthetic_size")
        self.seed = int(seed)
        self._datalist: list[dict[str, Any]] | None = None

    @property
    def in_channels(self) -> int:
        """Input channels of the network."""
        return 1

    @property
    def out_channels(self) -> int:
        """Output channels of the network (1 for a binary task with sigmoid, else C with softmax)."""
        return 1

    @property
    def keys(self) -> list[str]:
        """The keys of an entry that the training chain loads and transforms spatially: image, label, extras."""
        return ["image", "label", *self.recipe.extra_keys]

    @property
    def modes(self) -> list[str]:
        """The interpolation modes of :py:attr:`keys` (bilinear image, nearest label, the extras' own)."""
        return ["bilinear", "nearest", *self.recipe.extra_keys.values()]

    def generate(self, out_dir: str) -> None:
        """Write the synthetic data set into ``out_dir``."""
        raise NotImplementedError

    def read_datalist(self) -> list[dict[str, Any]]:
        """Every case of ``dataset_dir`` with its ``"fold"``."""
        raise NotImplementedError

    def prepare(self) -> BundleData:
        """
        Make sure the data set exists (generating the synthetic one on first use) and list it. Under DDP rank 0
        does the work first and the other ranks wait for it.

        Returns:
            self, so that configs can write ``"$@data.prepare()"``.

        Raises:
            FileNotFoundError: naming ``dataset_dir`` when it does not exist and is not the synthetic folder.
            ValueError: naming ``dataset_dir`` when it holds no case, or naming the file that
                :py:meth:`check_files` finds bad.
        """
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if dist else 0
        if rank == 0:
            self._ensure_dataset()
            self.check_files()
        if dist:
            torch.distributed.barrier()
        if rank != 0:
            self.datalist()
        return self

    def check_files(self) -> None:
        """
        List the data set and check its files before training starts, so that a bad file fails here with its path
        rather than inside a data loader. This base class checks what the readers check (the folder, complete
        cases, label shapes from the NIfTI headers); subclasses read more where that is cheap.

        Raises:
            ValueError: naming the file or the config key.
        """
        self.datalist()

    def _ensure_dataset(self) -> None:
        if os.path.isdir(self.dataset_dir):
            return
        synthetic = self.synthetic_dir is not None and os.path.abspath(self.dataset_dir) == os.path.abspath(
            self.synthetic_dir
        )
        if not synthetic:
            raise FileNotFoundError(
                f"config key 'dataset_dir': {self.dataset_dir} does not exist. Point it at the {self.layout} "
                "data set, or leave it at its default to generate a synthetic one."
            )
        target = os.path.normpath(os.path.abspath(self.dataset_dir))  # no trailing separator: the temp is a sibling
        tmp = f"{target}.partial{os.getpid()}"
        self.generate(tmp)
        os.replace(tmp, target)

    def datalist(self) -> list[dict[str, Any]]:
        """All cases (read once)."""
        if self._datalist is None:
            self._ensure_dataset()
            self._datalist = self.read_datalist()
        return self._datalist

    def train_cases(self) -> list[dict[str, Any]]:
        """The cases outside ``fold``."""
        return [e for e in self.datalist() if e["fold"] != self.fold]

    def val_cases(self) -> list[dict[str, Any]]:
        """The cases of ``fold``."""
        cases = [e for e in self.datalist() if e["fold"] == self.fold]
        if not cases:
            raise ValueError(f"config key 'fold': fold {self.fold} of {self.dataset_dir} holds no case.")
        return cases

    def train_data(self) -> list[dict[str, Any]]:
        """The training entries (cases, or slices for 2D CT)."""
        return self.train_cases()

    def val_data(self) -> list[dict[str, Any]]:
        """The validation entries (whole cases)."""
        return self.val_cases()

    def images(self, input_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
        """
        The entries inference runs on: those of ``input_dir`` (:py:func:`monai_dml.bundle.inference_data`), or the
        validation fold's images.
        """
        if input_dir:
            return inference_data(input_dir)
        return [{"image": e["image"]} for e in self.val_cases()]


def positive_int(value: Any, key: str) -> int:
    """
    ``value`` as a positive int.

    Raises:
        ValueError: naming the config ``key`` otherwise.
    """
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"config key {key!r} must be a positive integer, got {value!r}.")
    return int(value)
