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
"""Fusion of several raters' masks into one training target (hard or soft)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import get_track_meta
from monai.transforms import Randomizable, Transform
from monai.utils import StrEnum, TransformBackends, convert_to_dst_type, convert_to_tensor

from monai_dml.metrics.dice import soft_dice_unchecked
from monai_dml.utils import check_rater_stack, look_up_option, one_hot_label_map

if TYPE_CHECKING:
    from monai_dml.transforms.fusion.staple import StapleResult

__all__ = [
    "FusionMethod",
    "RandRaterFusion",
    "RaterFusion",
    "majority_vote",
    "rater_dice_to_majority",
    "stack_to_probabilities",
]


class FusionMethod(StrEnum):
    """
    How the raters of one case become a training target.

    - ``MAJORITY``: hard majority vote (QUBIQ rule: foreground where at least ``R // 2 + 1`` raters agree).
    - ``RANDOM``: one rater drawn per call (the paper's "Random" baseline).
    - ``UNIFORM``: the mean of the raters (soft label).
    - ``WEIGHTED``: the mean weighted by each rater's Dice against the majority vote, or by user ``weights``.
    - ``STAPLE``: the STAPLE posterior probability (Warfield et al. 2004) computed by ITK.
    """

    MAJORITY = "majority"
    RANDOM = "random"
    UNIFORM = "uniform"
    WEIGHTED = "weighted"
    STAPLE = "staple"


def stack_to_probabilities(raters: torch.Tensor, num_classes: int | None = None, name: str = "raters") -> torch.Tensor:
    """
    Check a rater stack and return it as per-rater probability channels.

    Args:
        raters: ``(R, spatial...)``; binary masks in {0, 1} when ``num_classes`` is None, else integer label maps
            with values in ``[0, num_classes)``.
        num_classes: number of classes of integer label maps, or None for binary masks.
        name: the argument name used in error messages.

    Returns:
        float32 ``(R, 1, spatial...)`` foreground masks (binary), or ``(R, num_classes, spatial...)`` one-hot maps.

    Raises:
        ValueError: for R = 0, fewer than 2 or more than 3 spatial axes, no voxel, NaN/Inf, non-binary values in
            binary masks, labels outside ``[0, num_classes)`` or non-integer labels, ``num_classes < 2``.
    """
    check_rater_stack(raters, name)
    if num_classes is not None:
        if num_classes < 2:
            raise ValueError(
                f"num_classes must be at least 2 for label maps (None for binary masks), got {num_classes}."
            )
        return one_hot_label_map(raters.unsqueeze(1), num_classes, name, dim=1)
    values = raters.detach()
    if values.dtype == torch.bool:
        values = values.to(torch.uint8)
    # one aminmax pass, plus a fractional-part pass for floats; NaN fails both (no separate isfinite pass)
    lo, hi = (float(v) for v in torch.aminmax(values))
    if not (lo >= 0 and hi <= 1 and (not values.is_floating_point() or not bool(values.frac().any()))):
        if values.is_floating_point() and not bool(torch.isfinite(values).all()):
            raise ValueError(f"{name} contains NaN or Inf values (shape {tuple(values.shape)}).")
        found = torch.unique(values)[:8].tolist()
        raise ValueError(f"{name} must hold binary masks (0 or 1) when num_classes is None, found values {found}.")
    return values.to(torch.float32).unsqueeze(1)


def majority_vote(onehot: torch.Tensor) -> torch.Tensor:
    """
    Hard majority vote of a rater stack ``(R, C, spatial...)`` from :py:func:`stack_to_probabilities`.

    Binary (``C = 1``): foreground where at least ``R // 2 + 1`` raters mark it (QUBIQ's rule; with an even R a tie
    is background). Multi-class: the per-voxel mode; among tied classes the lowest class index wins, so ties go to
    the background (class 0) first. Deterministic.

    Args:
        onehot: ``(R, C, spatial...)`` per-rater probability channels (binary masks or one-hot maps).

    Returns:
        float32 ``(C, spatial...)``: a binary mask or a one-hot map.
    """
    n_raters = onehot.shape[0]
    votes = onehot.sum(dim=0)
    if onehot.shape[1] == 1:
        return (votes >= n_raters // 2 + 1).to(torch.float32)
    winner = torch.argmax(votes, dim=0, keepdim=True)  # first maximum: the lowest class index among ties
    return torch.zeros_like(votes).scatter_(0, winner, 1.0)


def _rater_dice(onehot: torch.Tensor, majority: torch.Tensor) -> torch.Tensor:
    """Dice of each rater against the majority vote: mean over foreground classes, 1 where both are empty."""
    if onehot.shape[1] > 1:  # foreground classes only
        onehot, majority = onehot[:, 1:], majority[1:]
    dice = soft_dice_unchecked(onehot, majority.unsqueeze(0))  # broadcast over raters, no copy
    dice = torch.nanmean(dice, dim=1)
    return torch.nan_to_num(dice, nan=1.0)  # empty rater and empty majority agree perfectly


def rater_dice_to_majority(raters: NdarrayOrTensor, num_classes: int | None = None) -> torch.Tensor:
    """
    Each rater's Dice score against the majority vote of all raters of the case (QUBIQ Table 1 statistic).

    Args:
        raters: ``(R, spatial...)`` binary masks, or integer label maps with ``num_classes``.
        num_classes: number of classes of integer label maps, or None for binary masks.

    Returns:
        float32 tensor ``(R,)``. Multi-class: the mean over the foreground classes present in the rater or the
        majority. A rater and a majority that are both empty score 1.

    Raises:
        ValueError: as :py:func:`stack_to_probabilities`.

    Example:
        >>> import torch
        >>> raters = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0]]).reshape(3, 1, 4)
        >>> rater_dice_to_majority(raters)  # the majority is [1, 1, 0, 0]
        tensor([1.0000, 1.0000, 0.6667])
    """
    onehot = stack_to_probabilities(convert_to_tensor(raters, track_meta=False), num_classes)
    return _rater_dice(onehot, majority_vote(onehot))


def _is_random_method(method: FusionMethod | str | None) -> bool:
    """Whether ``method`` draws a rater per call (``"random"``); raises ValueError for an unknown method."""
    return method is not None and look_up_option(method, FusionMethod, "method") == FusionMethod.RANDOM


class RaterFusion(Transform):
    """
    Fuse a stack of raters' masks ``(R, spatial...)`` into one target: a hard majority vote, one random rater, or a
    soft label (uniform mean, Dice-weighted mean, user-weighted mean, STAPLE probability).

    Binary masks give a ``(1, spatial...)`` foreground map; integer label maps with ``num_classes`` give
    ``(num_classes, spatial...)`` channels that sum to 1. The output is float32, of the input's type (NumPy, torch,
    MetaTensor with its metadata).

    Every method but ``"random"`` is deterministic, so this class is not ``Randomizable`` and MONAI's
    ``CacheDataset`` caches its output. ``RaterFusion(method="random")`` returns a
    :py:class:`monai_dml.transforms.RandRaterFusion` (a subclass of this one), which is ``Randomizable``.

    Wang, Z. et. al. (2023) Dice Semimetric Losses: Optimizing the Dice Score with Soft Labels. MICCAI 2023.

    Warfield, S. K. et. al. (2004) Simultaneous Truth and Performance Level Estimation (STAPLE): An Algorithm for
    the Validation of Image Segmentation. IEEE TMI 23(7).

    Example:
        >>> import torch
        >>> raters = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 1]]).reshape(3, 1, 4).float()
        >>> RaterFusion("uniform")(raters)  # a torch input comes back as a MetaTensor (MONAI's get_track_meta())
        metatensor([[[1.0000, 0.6667, 0.0000, 0.3333]]])
        >>> RaterFusion("uniform")(raters.numpy())
        array([[[1.        , 0.6666667 , 0.        , 0.33333334]]], dtype=float32)
        >>> type(RaterFusion("random")).__name__
        'RandRaterFusion'
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]
    default_method = FusionMethod.UNIFORM

    def __new__(cls, method: FusionMethod | str | None = None, *args: Any, **kwargs: Any) -> RaterFusion:
        if cls is RaterFusion and _is_random_method(method):
            cls = RandRaterFusion
        return super().__new__(cls)

    def __init__(
        self,
        method: FusionMethod | str | None = None,
        num_classes: int | None = None,
        weights: Sequence[float] | None = None,
        rater_dim: int = 0,
    ) -> None:
        """
        Args:
            method: {``"majority"``, ``"random"``, ``"uniform"``, ``"weighted"``, ``"staple"``}. Defaults to None:
                the class's ``default_method``, ``"uniform"`` (``"random"`` for
                :py:class:`monai_dml.transforms.RandRaterFusion`, which ``"random"`` makes the instance).
            num_classes: None for binary masks (output one foreground channel); the number of classes for integer
                label maps (output one channel per class, background included).
            weights: one non-negative weight per rater for ``"weighted"``; when None, ``"weighted"`` uses each
                rater's Dice against the majority vote of the case, normalised to sum 1.
            rater_dim: the axis of the input that indexes raters. Defaults to 0.

        Raises:
            ValueError: for an unknown ``method``, ``weights`` with another method, negative, non-finite or all-zero
                ``weights``, ``num_classes < 2``, ``"random"`` on a class that is not ``Randomizable`` or another
                method on one that is (RandRaterFusion).
        """
        self.method = look_up_option(self.default_method if method is None else method, FusionMethod, "method")
        if (self.method == FusionMethod.RANDOM) != isinstance(self, Randomizable):
            raise ValueError(
                f"{type(self).__name__} cannot fuse with method={self.method.value!r}: 'random' needs a Randomizable "
                "transform (RandRaterFusion), the other methods a deterministic one (RaterFusion)."
            )
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"num_classes must be at least 2 (None for binary masks), got {num_classes}.")
        self.num_classes = num_classes
        self.rater_dim = rater_dim
        self.weights: torch.Tensor | None = None
        if weights is not None:
            if self.method != FusionMethod.WEIGHTED:
                raise ValueError(f"weights apply to method='weighted' only, got method={self.method.value!r}.")
            w = torch.as_tensor(weights, dtype=torch.float32).flatten()
            if w.numel() == 0 or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
                raise ValueError(f"weights must be finite, no less than 0 and not all 0, got {w.tolist()}.")
            self.weights = w
        self.staple_sensitivity: torch.Tensor | None = None
        self.staple_specificity: torch.Tensor | None = None

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Args:
            img: ``(R, spatial...)`` rater stack (raters along ``rater_dim``).

        Returns:
            ``(1, spatial...)`` or ``(num_classes, spatial...)`` float32 target, the type of ``img``. With
            ``"staple"``, the estimated per-rater sensitivity and specificity are kept as ``staple_sensitivity`` and
            ``staple_specificity``.

        Raises:
            ValueError: on an invalid stack (see :py:func:`stack_to_probabilities`) or ``weights`` whose length is
                not the number of raters.
        """
        out, staple = self.fuse(img)
        if staple is not None:
            self.staple_sensitivity, self.staple_specificity = staple.sensitivity, staple.specificity
        return out

    def fuse(
        self, img: NdarrayOrTensor, pick_rater: Callable[[int], int] | None = None
    ) -> tuple[NdarrayOrTensor, StapleResult | None]:
        """
        The fusion of ``__call__`` without storing anything on the transform (safe from several threads).

        Args:
            img: ``(R, spatial...)`` rater stack (raters along ``rater_dim``).
            pick_rater: for ``"random"``: maps the number of raters to the index of the rater to return.

        Returns:
            the target as ``__call__`` returns it, and the :py:class:`monai_dml.transforms.StapleResult` of
            ``"staple"`` (None for the other methods).

        Raises:
            ValueError: as ``__call__``; for ``"random"`` without ``pick_rater``.
        """
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        raters = torch.movedim(convert_to_tensor(img_t, track_meta=False), self.rater_dim, 0)
        onehot = stack_to_probabilities(raters, self.num_classes, name="img")
        staple = None
        if self.method == FusionMethod.MAJORITY:
            out = majority_vote(onehot)
        elif self.method == FusionMethod.RANDOM:
            if pick_rater is None:
                raise ValueError("method='random' needs pick_rater (RandRaterFusion passes its draw).")
            out = onehot[pick_rater(onehot.shape[0])]
        elif self.method == FusionMethod.UNIFORM:
            out = onehot.mean(dim=0)
        elif self.method == FusionMethod.WEIGHTED:
            out = self._weighted(onehot)
        else:
            staple = self._staple(raters)
            out = staple.probability.to(torch.float32)
        dst = img if isinstance(img, np.ndarray) else img_t
        return convert_to_dst_type(out.clamp(0.0, 1.0), dst, dtype=torch.float32)[0], staple

    def _weighted(self, onehot: torch.Tensor) -> torch.Tensor:
        n_raters = onehot.shape[0]
        if self.weights is None:
            weights = _rater_dice(onehot, majority_vote(onehot))
            if float(weights.sum()) <= 0:  # every rater disagrees completely with the majority: fall back to uniform
                weights = torch.ones(n_raters, device=onehot.device)
        else:
            if self.weights.numel() != n_raters:
                raise ValueError(f"weights has {self.weights.numel()} values but the case has {n_raters} raters.")
            weights = self.weights
        weights = (weights / weights.sum()).to(onehot)
        return torch.tensordot(weights, onehot, dims=([0], [0]))

    def _staple(self, raters: torch.Tensor) -> StapleResult:
        from monai_dml.transforms.fusion.staple import staple_binary, staple_multiclass

        if self.num_classes is None:
            return staple_binary(raters)
        return staple_multiclass(raters, self.num_classes)


class RandRaterFusion(Randomizable, RaterFusion):
    """
    :py:class:`monai_dml.transforms.RaterFusion` with ``method="random"``: one rater drawn per call (the paper's
    "Random" baseline). ``Randomizable``: ``set_random_state(seed)`` makes the draws reproducible, and MONAI's
    ``CacheDataset`` caches the chain up to this transform and reruns it every epoch.

    ``RaterFusion(method="random")`` returns an instance of this class. The arguments are RaterFusion's, with
    ``method`` defaulting to ``"random"`` (the only one accepted) and no ``weights``.

    Example:
        >>> import torch
        >>> raters = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]]).reshape(2, 1, 4).float()
        >>> t = RandRaterFusion().set_random_state(0)
        >>> [t(raters).flatten().tolist() for _ in range(3)]  # one rater per call
        [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]
    """

    default_method = FusionMethod.RANDOM
    _rater = -1  # the last draw; -1: none yet

    def randomize(self, data: int) -> None:
        """Draw the rater index among ``data`` raters."""
        self._rater = int(self.R.randint(0, data))

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """
        Args:
            img: ``(R, spatial...)`` rater stack (raters along ``rater_dim``).
            randomize: draw a new rater; False reuses the last draw (a new one if there is none or it is out of
                range for this stack).

        Returns:
            the drawn rater as a ``(1, spatial...)`` or ``(num_classes, spatial...)`` float32 map, the type of
            ``img``.

        Raises:
            ValueError: on an invalid stack (see :py:func:`monai_dml.transforms.stack_to_probabilities`).
        """

        def pick(n_raters: int) -> int:
            if randomize or not 0 <= self._rater < n_raters:
                self.randomize(n_raters)
            return self._rater

        return self.fuse(img, pick_rater=pick)[0]
