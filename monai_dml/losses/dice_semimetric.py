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

import math
import warnings
from collections.abc import Callable, Sequence

import torch
from monai.metrics.utils import create_ignore_mask
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

from monai_dml.losses.functional import (
    ClassAverage,
    DiceDomain,
    DMLVariant,
    check_finite_statistics,
    dice_semimetric_loss,
    loss_from_statistics,
    statistics_from_sums,
    sums_needed,
)
from monai_dml.losses.fused import fused_overlap_sums
from monai_dml.utils import check_soft_target, look_up_option, one_hot_label_map

__all__ = ["DMLoss", "prepare_prediction_and_target", "prepare_target"]

_SOFT_TARGET_HINT = "Pass an integer label map with to_onehot_y=True, or rescale the soft label."


def _as_float_tensor(value: Sequence[float] | float | int | torch.Tensor | None, name: str) -> torch.Tensor | None:
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float32).detach().clone()
    if t.ndim > 1:
        raise ValueError(
            f"{name} must be a number or a 1-D sequence (one value per class), got shape {tuple(t.shape)}."
        )
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError(f"{name} must be finite and no less than 0, got {t.tolist()}.")
    return t


def _check_per_class(t: torch.Tensor | None, n_classes: int, name: str, include_background: bool) -> None:
    if t is not None and t.ndim == 1 and t.shape[0] != n_classes:
        hint = "" if include_background else " (include_background=False: do not count the background class 0)"
        raise ValueError(f"{name} has {t.shape[0]} values but the input has {n_classes} classes{hint}.")


def _check_target_ndim(input: torch.Tensor, target: torch.Tensor) -> None:
    if target.ndim != input.ndim:
        raise ValueError(
            f"target must have as many dimensions as input, got input {tuple(input.shape)} and target "
            f"{tuple(target.shape)}; an integer label map needs its channel axis: (B, 1, spatial...)."
        )


def prepare_prediction_and_target(
    input: torch.Tensor,
    target: torch.Tensor,
    include_background: bool = True,
    to_onehot_y: bool = False,
    sigmoid: bool = False,
    softmax: bool = False,
    other_act: Callable | None = None,
    ignore_index: int | None = None,
    check: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Activation, one-hot conversion, background removal and ``ignore_index`` masking, as ``monai.losses.DiceLoss``.

    Args:
        input: logits or probabilities, shape ``(B, C, spatial...)``.
        target: ``(B, C, spatial...)`` probabilities in [0, 1], or ``(B, 1, spatial...)`` integer labels with
            ``to_onehot_y``.
        include_background: keep channel 0. Defaults to True.
        to_onehot_y: one-hot convert a single-channel integer ``target``. Defaults to False.
        sigmoid: apply a sigmoid to ``input``. Defaults to False.
        softmax: apply a softmax over the channels of ``input``. Defaults to False.
        other_act: any other activation applied to ``input``. Defaults to None.
        ignore_index: label value whose voxels are excluded, as in MONAI. Defaults to None.
        check: check that a soft target is finite and in [0, 1]. Defaults to True.

    Returns:
        ``(prediction, target)`` probabilities of equal shape ``(B, C', spatial...)``.

    Raises:
        ValueError: on mismatched shapes, a multi-channel target with ``to_onehot_y``, integer labels outside
            ``[0, C)``, or a soft target outside [0, 1] or with NaN/Inf.
    """
    if input.ndim < 3:
        raise ValueError(f"input must have shape (B, C, spatial...), got {tuple(input.shape)}.")
    _check_target_ndim(input, target)
    if sigmoid:
        input = torch.sigmoid(input)
    n_pred_ch = input.shape[1]
    if softmax:
        if n_pred_ch == 1:
            warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=3)
        else:
            input = torch.softmax(input, 1)
    if other_act is not None:
        input = other_act(input)

    target, mask = prepare_target(input, target, include_background, to_onehot_y, ignore_index, check)
    if not include_background and n_pred_ch > 1:
        input = input[:, 1:]
    if mask is not None:
        input = input * mask
    return input, target


def prepare_target(
    input: torch.Tensor,
    target: torch.Tensor,
    include_background: bool = True,
    to_onehot_y: bool = False,
    ignore_index: int | None = None,
    check: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """
    The target half of :py:func:`prepare_prediction_and_target`: one-hot conversion, the range check of a soft
    target, background removal and ``ignore_index`` masking, against the channels of ``input``.

    Args:
        input: the prediction (logits or probabilities), ``(B, C, spatial...)``; only its shape is used.
        target: as in :py:func:`prepare_prediction_and_target`.
        include_background: keep channel 0. Defaults to True.
        to_onehot_y: one-hot convert a single-channel integer ``target``. Defaults to False.
        ignore_index: label value whose voxels are excluded. Defaults to None.
        check: check that a soft target is finite and in [0, 1]. Defaults to True; the fused logits path checks
            the range it reads on its way instead.

    Returns:
        ``(target, mask)``: the target ``(B, C', spatial...)`` (masked), and the ``(B, 1, spatial...)`` mask of the
        counted voxels (None without ``ignore_index``).

    Raises:
        ValueError: as :py:func:`prepare_prediction_and_target` for the target.
    """
    n_pred_ch = input.shape[1]
    original_target = target
    converted = False
    if to_onehot_y:
        if n_pred_ch == 1:
            warnings.warn("single channel prediction, `to_onehot_y=True` ignored.", stacklevel=3)
        else:
            if target.shape[1] != 1:
                raise ValueError(
                    f"to_onehot_y=True needs a single-channel integer target (B, 1, spatial...), got target "
                    f"{tuple(target.shape)}; pass one-hot/soft targets with to_onehot_y=False."
                )
            if ignore_index is not None and (ignore_index < 0 or ignore_index >= n_pred_ch):
                target = torch.where(target == ignore_index, torch.zeros_like(target), target)
            target = one_hot_label_map(target, n_pred_ch, "target", dim=1)
            converted = True
    if not converted and check:
        # voxels marked with ignore_index (e.g. 255) are not probabilities; they are masked out below
        if ignore_index is not None and target.shape[1] == 1:
            labelled = torch.where(target == ignore_index, torch.zeros_like(target), target)
            check_soft_target(labelled, hint=_SOFT_TARGET_HINT)
        else:
            check_soft_target(target, hint=_SOFT_TARGET_HINT)

    if not include_background:
        if n_pred_ch == 1:
            warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=3)
        else:
            target = target[:, 1:]

    # the prediction's shape after background removal
    expected = tuple(input.shape)
    if not include_background and n_pred_ch > 1:
        expected = (input.shape[0], n_pred_ch - 1, *input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target and input must have the same shape (after one-hot conversion and background removal), got "
            f"target {tuple(target.shape)} and input {expected}."
        )

    mask = None
    if ignore_index is not None:
        mask = create_ignore_mask(original_target, ignore_index)
        target = target * mask  # type: ignore[operator]
    return target, mask


class DMLoss(_Loss):
    """
    Dice semimetric loss (DML1/DML2), its Jaccard form (JML1/JML2) and the soft Dice loss, with a choice of the
    summation domain Phi and per-class smoothing epsilon. A drop-in for ``monai.losses.DiceLoss``: every argument of
    DiceLoss has the same name and meaning, and the same default except ``soft_label`` (None here, so that the
    default loss is ``"dml1"``; DiceLoss's default False is the soft Dice loss ``"sdl"``). On hard labels every
    variant gives DiceLoss's value and gradient, whatever ``soft_label``. On soft labels DML reaches its minimum 0
    exactly at ``input == target``, where the soft Dice loss (``variant="sdl"``, MONAI's ``soft_label=False``)
    pushes predictions to 0 or 1: ``DMLoss()`` matches ``DiceLoss(soft_label=True)`` there, not ``DiceLoss()``.

    .. math::

        \\mathrm{DML}_1 = 1 - \\frac{\\|x + y\\|_1 - \\|x - y\\|_1}{\\|x + y\\|_1}, \\qquad
        \\mathrm{DML}_2 = 1 - \\frac{2\\|x y\\|_1}{2\\|x y\\|_1 + \\|x - y\\|_1}

    computed per element of the domain Phi, with the smoothing terms of MONAI's DiceLoss, then averaged.
    The backward pass never stores ``x - y`` or ``|x - y|``: a custom autograd function recomputes their
    derivative from ``x`` and ``y`` (see :py:func:`monai_dml.losses.functional.overlap_statistics`). On logits
    (``sigmoid=True`` or ``softmax=True``) the activation runs inside that function (``fused=True``, see
    :py:mod:`monai_dml.losses.fused`): the probabilities are written once, into the buffer that backward turns into
    the gradient in place, there is no device-to-host read in backward and one in forward for all value checks
    (none with ``validate=False``).

    Wang, Z. et. al. (2023) Dice Semimetric Losses: Optimizing the Dice Score with Soft Labels. MICCAI 2023.

    Wang, Z. et. al. (2023) Jaccard Metric Losses: Optimizing the Jaccard Index with Soft Labels. NeurIPS 2023.

    Tilborghs, S. et. al. (2022) The Dice loss in the context of missing or empty labels: introducing Phi and
    epsilon. MICCAI 2022.

    Note:
        ``alpha``/``beta`` select the overlap index, as in the reference implementation (JDTLosses):

        =========  =======  ======
        index      alpha    beta
        =========  =======  ======
        Dice       0.5      0.5
        Jaccard    1.0      1.0
        Tversky    >= 0     >= 0
        =========  =======  ======

        The smoothing terms enter as ``(2 TP + smooth_nr) / (2 (TP + alpha FP + beta FN) + smooth_dr)``, which is
        MONAI's DiceLoss form; relative to ``monai.losses.TverskyLoss`` the smoothing terms are doubled.
        MONAI's ``soft_label=True`` is ``variant="dml1"`` and ``soft_label=False`` is ``variant="sdl"``; both
        spellings are accepted.

    Example:
        >>> import torch
        >>> loss = DMLoss(variant="dml1", reduction="none")
        >>> x = torch.tensor([0.9, 0.6, 0.2, 0.1]).reshape(1, 1, 4)
        >>> y = torch.tensor([1.0, 0.5, 0.0, 0.0]).reshape(1, 1, 4)
        >>> round(loss(x, y).item(), 4)  # 0.5 / 3.3
        0.1515
        >>> DMLoss().variant.value, DMLoss(soft_label=False).variant.value  # the default is not DiceLoss's "sdl"
        ('dml1', 'sdl')
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        squared_pred: bool = False,
        jaccard: bool = False,
        reduction: LossReduction | str = LossReduction.MEAN,
        smooth_nr: Sequence[float] | float | torch.Tensor = 1e-5,
        smooth_dr: Sequence[float] | float | torch.Tensor = 1e-5,
        batch: bool = False,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
        soft_label: bool | None = None,
        ignore_index: int | None = None,
        variant: DMLVariant | str | None = None,
        phi: DiceDomain | str | None = None,
        alpha: float | None = None,
        beta: float | None = None,
        gamma: float = 1.0,
        class_average: ClassAverage | str = ClassAverage.ALL,
        present_threshold: float = 0.0,
        sync_batch: bool = False,
        validate: bool = True,
        fused: bool = True,
    ) -> None:
        """
        Args:
            include_background: if False, channel 0 (background) is excluded. Defaults to True.
            to_onehot_y: convert a single-channel integer ``target`` to one-hot with ``input.shape[1]`` classes.
                Defaults to False.
            sigmoid: apply a sigmoid to the prediction. Defaults to False.
            softmax: apply a softmax to the prediction. Defaults to False.
            other_act: another activation applied to the prediction, e.g. ``torch.tanh``. Defaults to None.
            squared_pred: use squared predictions and targets in the denominator (the L2 relaxation, already
                compatible with soft labels, so all variants coincide). Defaults to False.
            jaccard: compute the Jaccard form (JML1/JML2, or the soft Jaccard loss for ``"sdl"``), i.e.
                ``alpha = beta = 1``. Defaults to False.
            reduction: {``"none"``, ``"mean"``, ``"sum"``}. Defaults to ``"mean"``.

                - ``"none"``: one value per domain element, shaped to broadcast against the input as in MONAI:
                  ``(B, C, 1, ...)`` for ``"I"``, ``(C, 1, ...)`` for ``"BI"`` (MONAI's ``batch=True`` shape),
                  ``(B, 1, 1, ...)`` for ``"CI"`` and ``(1, 1, ...)`` for ``"BCI"``.
                - ``"mean"``: the mean over the domain elements (over present ones with ``class_average="present"``).
                - ``"sum"``: the sum over the domain elements.
            smooth_nr: numerator smoothing epsilon, a float or one value per class (after ``include_background``).
                Defaults to 1e-5. See :py:func:`monai_dml.losses.estimate_epsilon` for the data-driven heuristic.
            smooth_dr: denominator smoothing epsilon, like ``smooth_nr``. Defaults to 1e-5.
            batch: MONAI's switch for summing over the batch; ``True`` is an alias of ``phi="BI"``. Defaults to False.
            weight: class weights, a number or one value per class (after ``include_background``), no less than 0.
                Ignored for a single-channel input, as in MONAI. Defaults to None.
            soft_label: MONAI's switch, accepted for drop-in use: True selects ``"dml1"`` (or keeps ``"dml2"``),
                False selects ``"sdl"``. Defaults to None: ``variant`` decides, and with both None the loss is
                ``"dml1"``. This default differs from DiceLoss's ``soft_label=False`` (the soft Dice loss ``"sdl"``);
                pass ``soft_label=False`` or ``variant="sdl"`` for DiceLoss's default loss on soft labels.
            ignore_index: label value whose voxels are excluded from the loss (MONAI's rule). Defaults to None.
            variant: {``"dml1"``, ``"dml2"``, ``"sdl"``}. Defaults to None: ``"dml1"``, the paper's recommendation,
                or ``"sdl"`` with ``soft_label=False``.
            phi: summation domain {``"I"``, ``"BI"``, ``"CI"``, ``"BCI"``} (Tilborghs et al.). Defaults to None:
                ``"BI"`` if ``batch`` else ``"I"``.
            alpha: false-positive weight of the Tversky form. Defaults to None: 0.5, or 1 with ``jaccard``.
            beta: false-negative weight of the Tversky form. Defaults to None: 0.5, or 1 with ``jaccard``.
            gamma: focal exponent (>= 1) applied to each domain element's loss; > 1 stresses poorly segmented
                elements (reference implementation). Defaults to 1.
            class_average: {``"all"``, ``"present"``}: average over all domain elements, or only over those whose
                target has a voxel above ``present_threshold``. Defaults to ``"all"``.
            present_threshold: threshold on the target maximum for ``class_average="present"``. Defaults to 0.
            sync_batch: under DDP, pool ``"BI"``/``"BCI"`` over the global batch of all ranks (a differentiable
                all-reduce of the soft counts), so that 2 ranks x batch 4 give the loss and gradients of 1 rank x
                batch 8. Defaults to False (each rank pools its own batch, as MONAI's ``batch=True`` does).
            validate: check the values of prediction and target: a soft target outside [0, 1], NaN/Inf anywhere,
                and for ``dml1``/``dml2`` a prediction outside [0, 1] raise a ``ValueError``. It costs one
                device-to-host read per call on the logits path (``sigmoid``/``softmax``). ``False`` skips the value
                checks (shapes and integer labels are still checked), for data validated once before training; bad
                values then give a wrong loss instead of an error. Defaults to True.
            fused: with ``sigmoid=True`` or ``softmax=True``, apply the activation inside the autograd function of
                the soft counts (:py:mod:`monai_dml.losses.fused`): the probabilities are never stored, backward
                recomputes them slab by slab. Same values and gradients as ``fused=False`` (activation, then the
                counts) to float rounding. Not used when ``target`` requires a gradient, nor under ``torch.compile``
                (the compiler fuses the activation itself). Defaults to True.

        Raises:
            TypeError: when ``other_act`` is not callable.
            ValueError: for incompatible activations, an unknown ``reduction``, ``variant``, ``phi`` or
                ``class_average``, ``soft_label`` contradicting ``variant``, ``batch=True`` with a ``phi`` other
                than ``"BI"``, ``jaccard`` together with
                ``alpha``/``beta``, negative or non-finite weights/smoothing/``alpha``/``beta``, or ``gamma < 1``.
        """
        super().__init__(reduction=look_up_option(reduction, LossReduction, "reduction").value)
        if other_act is not None and not callable(other_act):
            raise TypeError(f"other_act must be None or callable but is {type(other_act).__name__}.")
        if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
            raise ValueError("Incompatible values: more than 1 of [sigmoid=True, softmax=True, other_act is not None].")
        if soft_label is None:
            variant = DMLVariant.DML1 if variant is None else variant
        elif variant is None:
            variant = DMLVariant.DML1 if soft_label else DMLVariant.SDL
        self.variant = look_up_option(variant, DMLVariant, "variant")
        if soft_label is not None and soft_label == (self.variant == DMLVariant.SDL):
            raise ValueError(
                f"soft_label={soft_label} contradicts variant={self.variant.value!r}: soft_label=True means a DML "
                "variant, soft_label=False the soft Dice loss 'sdl'."
            )
        if phi is None:
            phi = DiceDomain.BI if batch else DiceDomain.I
        self.phi = look_up_option(phi, DiceDomain, "phi")
        if batch and self.phi != DiceDomain.BI:
            raise ValueError(f"batch=True is an alias of phi='BI' and contradicts phi={self.phi.value!r}.")
        if jaccard and (alpha is not None or beta is not None):
            raise ValueError("jaccard=True fixes alpha = beta = 1; pass either jaccard or alpha/beta, not both.")
        default = 1.0 if jaccard else 0.5
        self.alpha = float(default if alpha is None else alpha)
        self.beta = float(default if beta is None else beta)
        for name, value in (("alpha", self.alpha), ("beta", self.beta)):
            if not value >= 0 or value == float("inf"):
                raise ValueError(f"{name} must be a finite number no less than 0, got {value}.")
        if not gamma >= 1 or gamma == float("inf"):
            raise ValueError(f"gamma must be a finite number no less than 1, got {gamma}.")
        self.gamma = float(gamma)
        self.class_average = look_up_option(class_average, ClassAverage, "class_average")
        self.present_threshold = float(present_threshold)
        self.sync_batch = sync_batch
        self.validate = validate
        self.fused = fused
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.sigmoid = sigmoid
        self.softmax = softmax
        self.other_act = other_act
        self.squared_pred = squared_pred
        self.jaccard = jaccard
        self.batch = self.phi == DiceDomain.BI
        self.ignore_index = ignore_index
        self.register_buffer("class_weight", _as_float_tensor(weight, "weight"))
        self.register_buffer("smooth_nr", _as_float_tensor(smooth_nr, "smooth_nr"))
        self.register_buffer("smooth_dr", _as_float_tensor(smooth_dr, "smooth_dr"))
        self.class_weight: torch.Tensor | None
        self.smooth_nr: torch.Tensor
        self.smooth_dr: torch.Tensor

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: logits or probabilities (with no activation set), shape ``(B, C, spatial...)``.
            target: ``(B, C, spatial...)`` probabilities in [0, 1] (hard or soft labels), or ``(B, 1, spatial...)``
                integer labels with ``to_onehot_y=True``.

        Returns:
            The loss: a scalar for ``"mean"``/``"sum"``, else the per-domain-element tensor described in
            ``reduction``.

        Raises:
            ValueError: when shapes do not match, a soft target is outside [0, 1] or holds NaN/Inf, integer labels
                are out of range, the input holds NaN/Inf, or ``weight``/smoothing have the wrong number of classes;
                and for ``dml1``/``dml2`` when the prediction (after ``other_act``, or ``input`` without an activation)
                leaves [0, 1], where the semimetric is undefined (``variant="sdl"`` gives MONAI's value there).
        """
        if self._fusable(input, target):
            return self._forward_fused(input, target)
        x, y = prepare_prediction_and_target(
            input,
            target,
            self.include_background,
            self.to_onehot_y,
            self.sigmoid,
            self.softmax,
            self.other_act,
            self.ignore_index,
            check=self.validate,
        )
        if (
            self.validate
            and self.variant != DMLVariant.SDL
            and (self.other_act is not None or not (self.sigmoid or self.softmax))
        ):
            self._check_unit_interval(x)
        weight = self._class_weight(x.shape[1])
        f = dice_semimetric_loss(
            x,
            y,
            variant=self.variant,
            phi=self.phi,
            alpha=self.alpha,
            beta=self.beta,
            gamma=self.gamma,
            smooth_nr=self.smooth_nr,
            smooth_dr=self.smooth_dr,
            weight=weight,
            squared=self.squared_pred,
            sync_batch=self.sync_batch,
            validate=self.validate,
        )
        mask = self._present_mask(y) if self.class_average == ClassAverage.PRESENT else None
        return self._reduce(f, mask, input.ndim)

    def _fusable(self, input: torch.Tensor, target: torch.Tensor) -> bool:
        """Whether the activation can run inside the soft counts' autograd function."""
        if not self.fused or self.other_act is not None or target.requires_grad or input.ndim < 3:
            return False
        if torch.compiler.is_compiling():
            return False  # under torch.compile the compiler fuses activation and sums itself
        return self.sigmoid or (self.softmax and input.shape[1] > 1)

    def _forward_fused(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """:py:meth:`forward` on logits with the activation fused into the soft counts (one host read to check)."""
        _check_target_ndim(input, target)
        # a soft target's range is read on the way through the slabs, except where ignore_index marks voxels
        defer = self.validate and self.ignore_index is None and not self.to_onehot_y
        y, mask = prepare_target(
            input,
            target,
            self.include_background,
            self.to_onehot_y,
            self.ignore_index,
            check=self.validate and not defer,
        )
        first = 1 if not self.include_background and input.shape[1] > 1 else 0
        power, need_min, need_prod = sums_needed(self.variant, self.squared_pred)
        activation = "sigmoid" if self.sigmoid else "softmax"
        sx, sy, smin, sprod, value_range = fused_overlap_sums(
            input, y, activation, first, power, need_min, need_prod, mask, read_range=defer
        )
        tp, fp, fn = statistics_from_sums(sx, sy, smin, sprod, variant=self.variant, squared=self.squared_pred)
        if self.validate:
            check_finite_statistics(
                tp, fp, fn, input, y, target_range=value_range if defer else None, hint=_SOFT_TARGET_HINT
            )
        weight = self._class_weight(y.shape[1])
        f = loss_from_statistics(
            tp,
            fp,
            fn,
            self.phi,
            self.alpha,
            self.beta,
            self.gamma,
            self.smooth_nr,
            self.smooth_dr,
            weight,
            self.sync_batch,
        )
        mask_present = self._present_mask(y) if self.class_average == ClassAverage.PRESENT else None
        return self._reduce(f, mask_present, input.ndim)

    def _class_weight(self, n_classes: int) -> torch.Tensor | None:
        """The class weights for ``n_classes`` channels (checked with the smoothing terms), or None."""
        weight = self.class_weight
        if weight is not None and n_classes == 1:
            weight = None  # MONAI ignores class weights for a single channel
        if weight is not None and weight.ndim == 0:
            weight = weight.expand(n_classes)
        for name, t in (("weight", weight), ("smooth_nr", self.smooth_nr), ("smooth_dr", self.smooth_dr)):
            _check_per_class(t, n_classes, name, self.include_background)
        return weight

    def _check_unit_interval(self, x: torch.Tensor) -> None:
        # the semimetric is defined on [0, 1]: outside it (tanh, log_softmax, raw scores) |x - y| is no longer
        # |x| + |y| - 2 sum(min(x, y)) and the loss would be neither MONAI's Dice loss nor a Dice semimetric
        low, high = (float(v) for v in torch.stack(torch.aminmax(x.detach())))
        if not (math.isfinite(low) and math.isfinite(high)):
            return  # NaN/Inf: reported by dice_semimetric_loss ("input contains NaN or Inf")
        if not (low >= 0.0 and high <= 1.0):
            source = "the output of other_act" if self.other_act is not None else "input (no activation set)"
            raise ValueError(
                f"variant={self.variant.value!r} needs predictions in [0, 1], but {source} ranges over "
                f"[{low:.4g}, {high:.4g}]; set sigmoid=True or softmax=True, an activation into [0, 1], or "
                "variant='sdl' (the soft Dice loss, MONAI's DiceLoss value for any range)."
            )

    def _present_mask(self, y: torch.Tensor) -> torch.Tensor:
        peak = torch.amax(y.detach(), dim=tuple(range(2, y.ndim)))
        if self.phi in (DiceDomain.BI, DiceDomain.BCI):
            peak = peak.amax(dim=0, keepdim=True)
            if self.sync_batch and torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
        if self.phi in (DiceDomain.CI, DiceDomain.BCI):
            peak = peak.amax(dim=1, keepdim=True)
        return peak > self.present_threshold

    def _reduce(self, f: torch.Tensor, mask: torch.Tensor | None, ndim: int) -> torch.Tensor:
        if mask is not None:
            f = f * mask.to(f)
        if self.reduction == LossReduction.MEAN.value:
            if mask is None:
                return torch.mean(f)
            # no present element: 0, still attached to the graph so that backward works
            return torch.sum(f) / mask.sum().clamp_min(1).to(f)
        if self.reduction == LossReduction.SUM.value:
            return torch.sum(f)
        spatial = [1] * (ndim - 2)
        if self.phi in (DiceDomain.BI, DiceDomain.BCI):
            return f.reshape([f.shape[1]] + spatial)  # MONAI's batch=True shape: the batch axis is dropped
        return f.reshape(list(f.shape) + spatial)
