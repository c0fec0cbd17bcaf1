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
The label-mode table: for each training target of the bundles, the transforms that write ``label``, the keys the
data must carry beside ``image`` and ``label``, and the loss class it trains with. A new label mode is one entry of
:py:data:`LABEL_RECIPES`; the bundle configs reach it through :py:func:`label_targets` (a transform component) and
:py:func:`check_recipe` (an ``initialize`` step).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from monai.engines import PrepareBatch
from monai.transforms import AsDiscreted, MapTransform, Randomizable, Transform
from monai.utils import StrEnum
from torch.nn.modules.loss import _Loss

from monai_dml.bundle.utils import check_option
from monai_dml.losses import DMLCELoss, KDLoss
from monai_dml.transforms import LabelSmoothingd, LabelSmoothingMethod, RaterFusiond

__all__ = [
    "LABEL_RECIPES",
    "LabelMode",
    "LabelRecipe",
    "LabelTargetsd",
    "PrepareBatchTeacher",
    "RandLabelTargetsd",
    "check_recipe",
    "label_recipe",
    "label_targets",
]


class LabelMode(StrEnum):
    """
    The training target of a bundle (the ``label_mode`` config key).

    - ``hard``: the reference label, one-hot (QUBIQ: the raters' majority vote).
    - ``ls``: the reference label with label smoothing (:py:class:`monai_dml.transforms.LabelSmoothingd`).
    - ``kd``: the reference label plus a teacher's saved probabilities (``teacher`` key,
      :py:class:`monai_dml.losses.KDLoss`; the CT bundles' ``configs/kd.json``).
    - ``majority``, ``random``, ``uniform``, ``weighted``, ``staple``: the raters fused by
      :py:class:`monai_dml.transforms.RaterFusiond` (QUBIQ).
    - ``raters``: the uniform mean of the KiTS21/23 annotations (3D KiTS).
    """

    HARD = "hard"
    LS = "ls"
    KD = "kd"
    MAJORITY = "majority"
    RANDOM = "random"
    UNIFORM = "uniform"
    WEIGHTED = "weighted"
    STAPLE = "staple"
    RATERS = "raters"


@dataclass(frozen=True)
class TargetOptions:
    """The settings a recipe's transforms read (the arguments of :py:func:`label_targets`)."""

    num_classes: int | None  # None for a binary task (its label is the (1, ...) foreground map)
    ls_method: str
    ls_epsilon: float
    label_key: str
    rater_key: str


@dataclass(frozen=True)
class LabelRecipe:
    """
    One label mode.

    Attributes:
        targets: the transforms that write ``label`` from the loaded data, given the :py:class:`TargetOptions`.
        loss: the loss class the mode trains with.
        extra_keys: keys the data list and loading chain carry beside ``image`` and ``label``, each with the
            interpolation mode of its spatial transforms (``raters`` nearest, ``teacher`` bilinear).

    Whether the targets are drawn anew each time is not stored here: it follows from the transforms themselves
    (a ``Randomizable`` one, such as the random rater, makes :py:func:`label_targets` a :py:class:`RandLabelTargetsd`).
    """

    targets: Callable[[TargetOptions], list[MapTransform]]
    loss: type[_Loss] = DMLCELoss
    extra_keys: Mapping[str, str] = field(default_factory=dict)


def _onehot(o: TargetOptions) -> list[MapTransform]:
    # a binary task's label is already its (1, ...) foreground probability
    return [] if o.num_classes is None else [AsDiscreted(o.label_key, to_onehot=o.num_classes)]


def _smoothed(o: TargetOptions) -> list[MapTransform]:
    return [LabelSmoothingd(o.label_key, method=o.ls_method, epsilon=o.ls_epsilon, num_classes=o.num_classes)]


def _fusion(method: str) -> Callable[[TargetOptions], list[MapTransform]]:
    def build(o: TargetOptions) -> list[MapTransform]:
        return [RaterFusiond(o.rater_key, output_key=o.label_key, method=method, num_classes=o.num_classes)]

    return build


RATERS = {"raters": "nearest"}

LABEL_RECIPES: dict[str, LabelRecipe] = {
    LabelMode.HARD: LabelRecipe(_onehot),
    LabelMode.LS: LabelRecipe(_smoothed),
    LabelMode.KD: LabelRecipe(_onehot, loss=KDLoss, extra_keys={"teacher": "bilinear"}),
    LabelMode.MAJORITY: LabelRecipe(_fusion("majority"), extra_keys=RATERS),
    LabelMode.RANDOM: LabelRecipe(_fusion("random"), extra_keys=RATERS),
    LabelMode.UNIFORM: LabelRecipe(_fusion("uniform"), extra_keys=RATERS),
    LabelMode.WEIGHTED: LabelRecipe(_fusion("weighted"), extra_keys=RATERS),
    LabelMode.STAPLE: LabelRecipe(_fusion("staple"), extra_keys=RATERS),
    LabelMode.RATERS: LabelRecipe(_fusion("uniform"), extra_keys=RATERS),
}


def label_recipe(label_mode: str, supported: Sequence[str] | None = None) -> LabelRecipe:
    """
    The recipe of ``label_mode``.

    Args:
        label_mode: a :py:class:`LabelMode` value (any case).
        supported: the modes a data set offers (e.g. :py:attr:`monai_dml.bundle.CTData.label_modes`); None allows
            every mode of the table.

    Raises:
        ValueError: naming the config key ``label_mode`` for a mode outside ``supported``.
    """
    options = list(LABEL_RECIPES) if supported is None else [str(m) for m in supported]
    return LABEL_RECIPES[check_option(label_mode, options, "label_mode")]


class LabelTargetsd(Transform):
    """
    The transforms of a label mode's recipe as one component, so that a bundle config writes one entry
    (``{"_target_": "monai_dml.bundle.label_targets", "label_mode": "@label_mode", ...}``) whose arguments can be
    overridden from the command line. Deterministic recipes stay cacheable by ``CacheDataset``; a recipe with a
    random transform is a :py:class:`RandLabelTargetsd` instead.
    """

    def __init__(self, transforms: Sequence[Callable], label_mode: str) -> None:
        """
        Args:
            transforms: the recipe's transforms, applied in order.
            label_mode: the mode, for ``repr`` and errors.
        """
        self.transforms = list(transforms)
        self.label_mode = label_mode

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Apply the recipe's transforms to the dictionary ``data``."""
        d = dict(data)
        for t in self.transforms:
            d = t(d)
        return d

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label_mode={self.label_mode!r}, transforms={self.transforms})"


class RandLabelTargetsd(Randomizable, LabelTargetsd):
    """:py:class:`LabelTargetsd` of a recipe with a random transform (e.g. one rater drawn per iteration)."""

    def set_random_state(self, seed: int | None = None, state: Any = None) -> RandLabelTargetsd:
        """Seed this transform and every random transform of the recipe."""
        super().set_random_state(seed, state)
        for t in self.transforms:
            if isinstance(t, Randomizable):
                t.set_random_state(seed, state)
        return self

    def randomize(self, data: Any) -> None:
        """The recipe's transforms draw their own numbers."""


def label_targets(
    label_mode: str,
    num_classes: int | None = None,
    ls_method: str = "uniform",
    ls_epsilon: float = 0.1,
    label_key: str = "label",
    rater_key: str = "raters",
) -> LabelTargetsd:
    """
    The transform that writes the training target of ``label_mode`` into ``label_key`` (see :py:data:`LABEL_RECIPES`).

    Args:
        label_mode: a :py:class:`LabelMode` value.
        num_classes: classes of an integer ``label``/rater label maps (CT: background, organ, tumour); None or 1 for
            a binary task whose label is already a ``(1, ...)`` foreground map.
        ls_method: label smoothing of ``label_mode="ls"``: ``"uniform"``, ``"boundary"`` or ``"svls"``.
        ls_epsilon: label-smoothing strength in [0, 1). Defaults to 0.1.
        label_key: the reference label and output key. Defaults to ``"label"``.
        rater_key: the rater stack of the fusion modes. Defaults to ``"raters"``.

    Raises:
        ValueError: naming the config key ``label_mode``, ``ls_method`` or ``ls_epsilon`` when invalid.
    """
    recipe = label_recipe(label_mode)
    ls_method = check_option(ls_method, [m.value for m in LabelSmoothingMethod], "ls_method")
    if not 0.0 <= float(ls_epsilon) < 1.0:
        raise ValueError(f"config key 'ls_epsilon' must be in [0, 1), got {ls_epsilon}.")
    classes = int(num_classes) if num_classes is not None and num_classes > 1 else None  # None: a binary (1, ...) map
    transforms = recipe.targets(TargetOptions(classes, ls_method, float(ls_epsilon), label_key, rater_key))
    cls = RandLabelTargetsd if any(isinstance(t, Randomizable) for t in transforms) else LabelTargetsd
    return cls(transforms, str(label_mode).lower())


def check_recipe(label_mode: str, loss: _Loss) -> bool:
    """
    Check that the config's ``loss`` is the loss class of ``label_mode`` (an ``initialize`` step of ``train.json``).

    Returns:
        True.

    Raises:
        ValueError: naming the config key ``loss`` and the class the mode needs.
    """
    recipe = label_recipe(label_mode)
    if not isinstance(loss, recipe.loss):
        raise ValueError(
            f"config key 'loss': label_mode {str(label_mode).lower()!r} trains with {recipe.loss.__name__}, the config "
            f"gives {type(loss).__name__}. "
            + ("Add configs/kd.json to --config_file." if recipe.loss is KDLoss else "Remove configs/kd.json.")
        )
    return True


class PrepareBatchTeacher(PrepareBatch):
    """
    ``prepare_batch`` of a trainer whose loss takes ``(label, teacher)`` (:py:class:`monai_dml.losses.KDLoss`):
    the teacher's probabilities travel as their own batch key and reach the loss beside the label.
    """

    def __init__(self, teacher_key: str = "teacher") -> None:
        """
        Args:
            teacher_key: the batch key of the teacher's probabilities. Defaults to ``"teacher"``.
        """
        self.teacher_key = teacher_key

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """
        Returns:
            ``(image, (label, teacher))`` on ``device``.

        Raises:
            KeyError: naming ``teacher_key`` when the batch lacks it.
        """
        if self.teacher_key not in batchdata:
            raise KeyError(f"the batch has no {self.teacher_key!r} key (the kd recipe loads the teacher maps into it).")
        image, label, teacher = (
            batchdata[k].to(device=device, non_blocking=non_blocking, **kwargs)
            for k in ("image", "label", self.teacher_key)
        )
        return image, (label, teacher)
