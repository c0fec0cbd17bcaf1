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
import torch.nn.functional as F
from monai.losses.dice import DiceCEReduction
from torch.nn.modules.loss import _Loss

from monai_dml.losses.dice_semimetric import DMLoss
from monai_dml.utils import look_up_option

__all__ = ["DMLCELoss"]


class DMLCELoss(_Loss):
    """
    The paper's training objective: ``lambda_ce * CE + lambda_dml * DML`` with ``0.25`` and ``0.75`` by default.

    The cross-entropy accepts soft targets: against a probability map ``y`` it is
    ``-sum_c y_c log softmax(x)_c``, i.e. the KL divergence ``KL(y || p)`` plus the constant entropy of ``y``, so
    both terms are minimised at ``p = y``. A single-channel input uses the binary cross-entropy with logits. All
    arguments of ``monai.losses.DiceCELoss`` are accepted with the same meaning; any other keyword argument
    (``variant``, ``phi``, ``ignore_index``, ...) goes to :py:class:`monai_dml.losses.DMLoss`.

    Wang, Z. et. al. (2023) Dice Semimetric Losses: Optimizing the Dice Score with Soft Labels. MICCAI 2023.

    Example:
        >>> import torch
        >>> loss = DMLCELoss(softmax=True)
        >>> logits = torch.randn(2, 3, 8, 8)
        >>> soft = torch.softmax(torch.randn(2, 3, 8, 8), dim=1)
        >>> loss(logits, soft).ndim
        0
    """

    def __init__(
        self,
        lambda_ce: float = 0.25,
        lambda_dml: float | None = None,
        weight: Sequence[float] | torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
        lambda_dice: float | None = None,
        **dml_kwargs: Any,
    ) -> None:
        """
        Args:
            lambda_ce: weight of the cross-entropy term, no less than 0. Defaults to 0.25.
            lambda_dml: weight of the DML term, no less than 0. Defaults to None: ``lambda_dice`` if given, else 0.75.
            weight: class weights for both terms, as in DiceCELoss: the CE class weights (``pos_weight`` for a
                single channel) and the DML class weights (without class 0 if ``include_background=False``).
            label_smoothing: CE label smoothing in [0, 1] (torch semantics). Defaults to 0.
            reduction: {``"mean"``, ``"sum"``}, as DiceCELoss. Defaults to ``"mean"``.
            lambda_dice: DiceCELoss's name for ``lambda_dml``, accepted so that configs move over unchanged.
            dml_kwargs: every other argument of :py:class:`monai_dml.losses.DMLoss` (``include_background``,
                ``to_onehot_y``, ``sigmoid``, ``softmax``, ``variant``, ``phi``, ``smooth_nr``, ...).

        Raises:
            ValueError: for negative lambdas, both ``lambda_dml`` and ``lambda_dice``, ``label_smoothing`` outside
                [0, 1], an unknown ``reduction``, or any argument DMLoss rejects.
        """
        super().__init__()
        reduction = look_up_option(reduction, DiceCEReduction, "reduction").value
        if lambda_dml is not None and lambda_dice is not None:
            raise ValueError("lambda_dice is an alias of lambda_dml; pass only one of them.")
        lambda_dml = lambda_dice if lambda_dml is None else lambda_dml
        self.lambda_dml = 0.75 if lambda_dml is None else float(lambda_dml)
        self.lambda_ce = float(lambda_ce)
        for name, value in (("lambda_ce", self.lambda_ce), ("lambda_dml", self.lambda_dml)):
            if not value >= 0:
                raise ValueError(f"{name} should be no less than 0.0, got {value}.")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}.")
        self.label_smoothing = float(label_smoothing)
        ce_weight = None if weight is None else torch.as_tensor(weight, dtype=torch.float32)
        dml_weight = ce_weight
        if ce_weight is not None and ce_weight.ndim == 1 and not dml_kwargs.get("include_background", True):
            dml_weight = ce_weight[1:]
        self.dml = DMLoss(reduction=reduction, weight=dml_weight, **dml_kwargs)
        self.register_buffer("ce_weight", ce_weight)
        self.ce_weight: torch.Tensor | None
        self.ce_reduction = reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: logits, shape ``(B, C, spatial...)``.
            target: ``(B, C, spatial...)`` probabilities (hard or soft), or ``(B, 1, spatial...)`` integer labels.

        Returns:
            The scalar weighted sum of the two terms.

        Raises:
            ValueError: when input and target differ in the number of dimensions or channels, or DMLoss rejects
                the pair (values outside [0, 1], NaN/Inf, ...).
        """
        if input.dim() != target.dim():
            raise ValueError(
                f"input and target must have the same number of dimensions, got input {tuple(input.shape)} and "
                f"target {tuple(target.shape)}; an integer label map needs its channel axis: (B, 1, spatial...)."
            )
        if target.shape[1] != 1 and target.shape[1] != input.shape[1]:
            raise ValueError(
                "number of channels for target is neither 1 (integer labels) nor the same as input, "
                f"got input {tuple(input.shape)} and target {tuple(target.shape)}."
            )
        dml_loss = self.dml(input, target)  # validates the target first
        ce_loss = self.ce(input, target) if input.shape[1] != 1 else self.bce(input, target)
        return self.lambda_dml * dml_loss + self.lambda_ce * ce_loss

    def ce(self, input: torch.Tensor, target: torch.Tensor, label_target: bool = True) -> torch.Tensor:
        """
        Cross-entropy of multi-channel logits against integer labels ``(B, 1, ...)`` or probabilities ``(B, C, ...)``,
        honouring ``weight`` and the reduction and, for a label (``label_target``; False e.g. for a teacher's
        probabilities), ``label_smoothing`` and the DML term's ``ignore_index``.
        """
        ignore_index = self.dml.ignore_index if label_target else None
        label_smoothing = self.label_smoothing if label_target else 0.0
        if target.shape[1] == 1:
            return F.cross_entropy(
                input,
                target.squeeze(1).long(),
                weight=self.ce_weight,
                ignore_index=-100 if ignore_index is None else ignore_index,
                reduction=self.ce_reduction,
                label_smoothing=label_smoothing,
            )
        target = target.to(input.dtype)
        if ignore_index is None:
            return F.cross_entropy(
                input, target, weight=self.ce_weight, reduction=self.ce_reduction, label_smoothing=label_smoothing
            )
        per_voxel = F.cross_entropy(
            input, target, weight=self.ce_weight, reduction="none", label_smoothing=label_smoothing
        )
        if 0 <= ignore_index < target.shape[1]:
            keep = 1.0 - target[:, ignore_index]
        else:
            keep = (target.sum(dim=1) > 0).to(per_voxel)
        total = torch.sum(per_voxel * keep)
        return total / keep.sum().clamp_min(1) if self.ce_reduction == "mean" else total

    def bce(self, input: torch.Tensor, target: torch.Tensor, label_target: bool = True) -> torch.Tensor:
        """
        Binary cross-entropy with logits of a single-channel input against a (soft) foreground map, with ``weight`` as
        ``pos_weight`` (as MONAI's DiceCELoss) and, for a label, the voxels of ``ignore_index`` excluded.
        ``label_smoothing`` does not apply to the binary case (as in MONAI).
        """
        ignore_index = self.dml.ignore_index if label_target else None
        if ignore_index is None:
            return F.binary_cross_entropy_with_logits(
                input, target.to(input.dtype), pos_weight=self.ce_weight, reduction=self.ce_reduction
            )
        keep = (target != ignore_index).to(input.dtype)
        clean = torch.where(keep > 0, target.to(input.dtype), torch.zeros_like(input))
        per_voxel = F.binary_cross_entropy_with_logits(input, clean, pos_weight=self.ce_weight, reduction="none")
        total = torch.sum(per_voxel * keep)
        return total / keep.sum().clamp_min(1) if self.ce_reduction == "mean" else total
