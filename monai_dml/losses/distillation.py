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

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn.modules.loss import _Loss

from monai_dml.losses.compound import DMLCELoss
from monai_dml.losses.dice_semimetric import DMLoss
from monai_dml.utils import check_soft_target, temper_probabilities

__all__ = ["KDLoss"]


class KDLoss(_Loss):
    """
    Knowledge distillation for segmentation with a Dice semimetric loss: the paper's recipe against the label plus
    the same recipe against the teacher's (re-tempered) probabilities,

    .. math::

        \\ell = w_{label} \\left[\\lambda_{ce} \\mathrm{CE}(s, y) + \\lambda_{dml} \\mathrm{DML}(\\sigma(s), y)\\right]
        + w_{teacher} \\left[\\lambda_{ce} T^2 \\mathrm{CE}(s / T, q_T) + \\lambda_{dml}
        \\mathrm{DML}(\\sigma(s / T), q_T)\\right]

    where ``s`` are the student's logits, ``q_T`` the teacher's probabilities re-tempered at ``T``
    (:py:func:`monai_dml.losses.temper_probabilities`) and ``sigma`` the softmax (sigmoid for one channel). The CE to
    a probability map is the KL divergence up to a constant, scaled by ``T^2`` as in Hinton et al.; the DML term is
    what makes the soft teacher map a meaningful Dice target (SDL would push the student to its vertices). Defaults
    follow the reference implementation's KD configuration: ``T = 1``, ``w_label = w_teacher = 0.5``, and the
    paper's ``lambda_ce = 0.25``, ``lambda_dml = 0.75``.

    Wang, Z. et. al. (2023) Dice Semimetric Losses: Optimizing the Dice Score with Soft Labels. MICCAI 2023.

    Hinton, G. et. al. (2015) Distilling the Knowledge in a Neural Network. NeurIPS Workshop.

    Example:
        >>> import torch
        >>> loss = KDLoss(softmax=True, to_onehot_y=True)
        >>> student = torch.randn(2, 3, 8, 8)
        >>> label = torch.randint(0, 3, (2, 1, 8, 8))
        >>> teacher = torch.softmax(torch.randn(2, 3, 8, 8), dim=1)
        >>> loss(student, label, teacher).ndim
        0
    """

    def __init__(
        self,
        temperature: float = 1.0,
        label_weight: float = 0.5,
        teacher_weight: float = 0.5,
        lambda_ce: float = 0.25,
        lambda_dml: float = 0.75,
        teacher_terms: Sequence[str] = ("ce", "dml"),
        **dml_kwargs: Any,
    ) -> None:
        """
        Args:
            temperature: distillation temperature ``T > 0``. Defaults to 1.
            label_weight: weight of the term against the label, no less than 0. Defaults to 0.5.
            teacher_weight: weight of the term against the teacher, no less than 0. Defaults to 0.5.
            lambda_ce: CE weight inside each term. Defaults to 0.25.
            lambda_dml: DML weight inside each term. Defaults to 0.75.
            teacher_terms: which of ``"ce"`` and ``"dml"`` the term against the teacher holds (the ablation of the
                paper's Table 7); a left-out term is dropped from the teacher term only, the label term keeps both.
                Defaults to both.
            dml_kwargs: arguments of :py:class:`monai_dml.losses.DMLCELoss`/:py:class:`~monai_dml.losses.DMLoss`
                (``sigmoid``, ``softmax``, ``to_onehot_y``, ``variant``, ``phi``, ``weight``, ...). ``to_onehot_y``
                and ``ignore_index`` apply to the label term only; the teacher term always takes probabilities.

        Raises:
            ValueError: for a temperature that is not a finite number > 0, negative weights, ``teacher_terms``
                that is empty or holds anything but ``"ce"``/``"dml"``, or arguments that DMLCELoss rejects.
        """
        super().__init__()
        if not (temperature > 0 and temperature != float("inf")):
            raise ValueError(f"temperature must be a finite number greater than 0, got {temperature}.")
        for name, value in (("label_weight", label_weight), ("teacher_weight", teacher_weight)):
            if not value >= 0:
                raise ValueError(f"{name} should be no less than 0.0, got {value}.")
        terms = (teacher_terms,) if isinstance(teacher_terms, str) else tuple(teacher_terms)
        if not terms or not set(terms) <= {"ce", "dml"}:
            raise ValueError(f'teacher_terms must be a non-empty subset of ("ce", "dml"), got {teacher_terms!r}.')
        self.teacher_terms = frozenset(terms)
        self.temperature = float(temperature)
        self.label_weight = float(label_weight)
        self.teacher_weight = float(teacher_weight)
        self.label_loss = DMLCELoss(lambda_ce=lambda_ce, lambda_dml=lambda_dml, **dml_kwargs)
        label_only = ("to_onehot_y", "ignore_index", "weight", "label_smoothing", "reduction", "lambda_dice")
        teacher_kwargs = {k: v for k, v in dml_kwargs.items() if k not in label_only}
        self.teacher_dml = DMLoss(
            reduction=self.label_loss.ce_reduction, weight=self.label_loss.dml.class_weight, **teacher_kwargs
        )

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor | Sequence[torch.Tensor],
        teacher: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            input: student logits, shape ``(B, C, spatial...)``.
            target: the label, as :py:class:`monai_dml.losses.DMLCELoss` takes it (probabilities or integer map);
                or the pair ``(label, teacher)`` when ``teacher`` is None, for engines that pass one target (a
                MONAI trainer with :py:class:`monai_dml.bundle.PrepareBatchTeacher`).
            teacher: the teacher's probabilities ``(B, C, spatial...)`` (``(B, 1, ...)`` foreground probability for a
                single-channel student), summing to 1 over channels.

        Returns:
            the scalar loss.

        Raises:
            ValueError: when ``teacher`` has another shape than ``input`` or is not a probability map.
            TypeError: when ``teacher`` is None and ``target`` is not a ``(label, teacher)`` pair.
        """
        if teacher is None:
            if isinstance(target, torch.Tensor) or not isinstance(target, Sequence) or len(target) != 2:
                raise TypeError("teacher is None: target must be the pair (label, teacher) of tensors.")
            target, teacher = target
        assert isinstance(target, torch.Tensor)
        if teacher.shape != input.shape:
            raise ValueError(
                f"teacher must have the shape of the student's input, got teacher {tuple(teacher.shape)} and input "
                f"{tuple(input.shape)}."
            )
        check_soft_target(teacher, "teacher")
        label_term = self.label_loss(input, target)
        q = temper_probabilities(teacher.detach(), self.temperature, dim=1).to(input.dtype)
        scaled = input / self.temperature
        lc = self.label_loss
        teacher_term = input.new_zeros(())
        if "ce" in self.teacher_terms:
            ce = lc.ce(scaled, q, label_target=False) if input.shape[1] != 1 else lc.bce(scaled, q, label_target=False)
            teacher_term = teacher_term + lc.lambda_ce * self.temperature**2 * ce
        if "dml" in self.teacher_terms:
            teacher_term = teacher_term + lc.lambda_dml * self.teacher_dml(scaled, q)
        return self.label_weight * label_term + self.teacher_weight * teacher_term
