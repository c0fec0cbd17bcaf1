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
"""The input rules that losses, transforms, metrics, calibration and data share, each written once.

- soft targets: finite probabilities in [0, 1] (:py:func:`check_soft_target`);
- probability maps: soft targets whose channels sum to 1 within :py:data:`SIMPLEX_TOLERANCE`
  (:py:func:`check_probability_map`, :py:func:`check_channel_sums`);
- integer label maps: whole numbers in ``[0, num_classes)``, and their one-hot conversion
  (:py:func:`check_label_map`, :py:func:`one_hot_label_map`);
- rater stacks ``(R, H, W[, D])`` and raters that must agree in shape (:py:func:`check_rater_stack`,
  :py:func:`check_rater_shapes`).

Every error names the argument it is about and the shape or the values found. The value checks cost one
``torch.aminmax`` pass over the tensor (NaN fails every comparison, so it needs no separate pass).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral
from typing import Any

import torch

__all__ = [
    "SIMPLEX_TOLERANCE",
    "check_channel_sums",
    "check_label_map",
    "check_probability_map",
    "check_rater_shapes",
    "check_rater_stack",
    "check_soft_target",
    "one_hot_label_map",
]

#: Largest accepted ``|sum over channels - 1|`` of a probability map (one-hot, soft label, softmax output).
SIMPLEX_TOLERANCE = 1e-3


def _value_range(t: torch.Tensor) -> tuple[float, float]:
    """``(min, max)`` of a non-empty tensor in one pass; booleans count as 0 and 1."""
    values = t.detach()
    if values.dtype == torch.bool:
        values = values.to(torch.uint8)
    lo, hi = torch.aminmax(values)
    return float(lo), float(hi)


def check_soft_target(target: torch.Tensor, name: str = "target", hint: str = "") -> None:
    """
    Raise unless every value of ``target`` is a finite probability in [0, 1].

    Args:
        target: any tensor.
        name: the argument name used in error messages. Defaults to ``"target"``.
        hint: a sentence appended to the range error, e.g. how to pass an integer label map instead.
            Defaults to none.

    Raises:
        ValueError: naming ``name`` and its shape, with the range found or saying that it holds NaN or Inf.

    Example:
        >>> import torch
        >>> check_soft_target(torch.tensor([0.0, 0.5, 1.0]))  # passes
        >>> check_soft_target(torch.tensor([0.0, 1.5]), "y")
        Traceback (most recent call last):
        ...
        ValueError: y must hold probabilities in [0, 1] (soft labels), got values in [0, 1.5] (shape (2,)).
    """
    if target.numel() == 0:
        return
    lo, hi = _value_range(target)
    if lo >= 0.0 and hi <= 1.0:
        return
    shape = tuple(target.shape)
    if not (math.isfinite(lo) and math.isfinite(hi)) or not bool(torch.isfinite(target).all()):
        raise ValueError(
            f"{name} contains NaN or Inf values (shape {shape}); soft labels must be finite probabilities in [0, 1]."
        )
    message = f"{name} must hold probabilities in [0, 1] (soft labels), got values in [{lo:.6g}, {hi:.6g}]"
    message += f" (shape {shape})."
    raise ValueError(f"{message} {hint}" if hint else message)


def check_channel_sums(
    probs: torch.Tensor, name: str = "img", dim: int = 0, tolerance: float = SIMPLEX_TOLERANCE
) -> None:
    """
    Raise unless the channels of ``probs`` along ``dim`` sum to 1 within ``tolerance`` (summed in float64).
    A single channel is a binary foreground probability and always passes; the values are not checked here
    (see :py:func:`check_probability_map`).

    Args:
        probs: a tensor with its channels (classes) on axis ``dim``.
        name: the argument name used in error messages. Defaults to ``"img"``.
        dim: the channel axis. Defaults to 0 (channel-first without batch); 1 for batches or ``(N, K)`` rows.
        tolerance: largest accepted deviation of a sum from 1. Defaults to :py:data:`SIMPLEX_TOLERANCE`.

    Raises:
        ValueError: naming ``name``, with the range of the channel sums and the shape.
    """
    if probs.numel() == 0 or probs.shape[dim] <= 1:
        return
    sums = probs.detach().sum(dim=dim, dtype=torch.float64)
    lo, hi = (float(v) for v in torch.aminmax(sums))
    if max(abs(lo - 1.0), abs(hi - 1.0)) <= tolerance:  # NaN fails too
        return
    raise ValueError(
        f"{name} channels must sum to 1 (a probability map, e.g. a softmax output), got channel sums over axis "
        f"{dim} in [{lo:.6g}, {hi:.6g}] (shape {tuple(probs.shape)}, tolerance {tolerance:g})."
    )


def check_probability_map(
    probs: torch.Tensor, name: str = "img", tolerance: float = SIMPLEX_TOLERANCE, dim: int = 0
) -> None:
    """
    Raise unless ``probs`` is a probability map: finite values in [0, 1] (:py:func:`check_soft_target`) and, for
    more than one channel, channels summing to 1 within ``tolerance`` (:py:func:`check_channel_sums`).

    Args:
        probs: a map with its channels on axis ``dim``, e.g. channel-first ``(C, spatial...)``.
        name: the argument name used in error messages. Defaults to ``"img"``.
        tolerance: largest accepted deviation of the channel sums from 1. Defaults to :py:data:`SIMPLEX_TOLERANCE`.
        dim: the channel axis. Defaults to 0.

    Raises:
        ValueError: naming ``name``, for fewer than 2 axes, values outside [0, 1], NaN/Inf, or channel sums
            away from 1.

    Example:
        >>> import torch
        >>> check_probability_map(torch.tensor([[0.2, 1.0], [0.8, 0.0]]))  # (C=2, W=2): passes
    """
    if probs.ndim < 2 or not -probs.ndim <= dim < probs.ndim:
        raise ValueError(
            f"{name} must have a channel axis {dim} and at least one more axis, e.g. channel-first "
            f"(C, spatial...), got shape {tuple(probs.shape)}."
        )
    check_soft_target(probs, name)
    check_channel_sums(probs, name, dim, tolerance)


def check_label_map(labels: torch.Tensor, num_classes: int, name: str = "target") -> None:
    """
    Raise unless ``labels`` holds whole numbers in ``[0, num_classes)`` (any dtype; booleans are 0 and 1).

    Args:
        labels: an integer label map of any shape.
        num_classes: the number of classes, at least 1.
        name: the argument name used in error messages. Defaults to ``"target"``.

    Raises:
        ValueError: naming ``name`` and its shape, for NaN/Inf, values outside ``[0, num_classes - 1]`` or values
            that are not whole numbers; or for ``num_classes < 1``.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}.")
    if labels.numel() == 0:
        return
    lo, hi = _value_range(labels)
    shape = tuple(labels.shape)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(
            f"{name} contains NaN or Inf values (shape {shape}); an integer label map must hold whole numbers."
        )
    whole = not labels.is_floating_point() or not bool(labels.detach().frac().any())
    if lo >= 0 and hi <= num_classes - 1 and whole:
        return
    kind = "" if whole else ", not all whole numbers"
    raise ValueError(
        f"{name} must be an integer label map in [0, {num_classes - 1}] for num_classes={num_classes}, "
        f"got values in [{lo:.6g}, {hi:.6g}]{kind} (shape {shape})."
    )


def one_hot_label_map(
    labels: torch.Tensor, num_classes: int, name: str = "target", dim: int = 1, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """
    Check an integer label map (:py:func:`check_label_map`) and one-hot encode it along its channel axis ``dim``.

    Args:
        labels: an integer label map with a single channel on axis ``dim``, e.g. ``(B, 1, spatial...)``.
        num_classes: the number of classes.
        name: the argument name used in error messages. Defaults to ``"target"``.
        dim: the channel axis. Defaults to 1 (batches); use 0 for channel-first maps without batch.
        dtype: the output dtype. Defaults to float32.

    Returns:
        the one-hot map, the shape of ``labels`` with ``num_classes`` channels on axis ``dim``, on its device.

    Raises:
        ValueError: naming ``name``, when axis ``dim`` is missing or not of size 1, or as
            :py:func:`check_label_map`.

    Example:
        >>> import torch
        >>> one_hot_label_map(torch.tensor([[[0, 2, 1]]]), num_classes=3)  # (B=1, 1, W=3) -> (1, 3, 3)
        tensor([[[1., 0., 0.],
                 [0., 0., 1.],
                 [0., 1., 0.]]])
    """
    if not -labels.ndim <= dim < labels.ndim or labels.shape[dim] != 1:
        raise ValueError(
            f"{name} must be a single-channel integer label map (size 1 on axis {dim}) for num_classes="
            f"{num_classes}, got shape {tuple(labels.shape)}."
        )
    check_label_map(labels, num_classes, name)
    shape = list(labels.shape)
    shape[dim] = num_classes
    out = torch.zeros(shape, dtype=dtype, device=labels.device)
    return out.scatter_(dim, labels.detach().long(), 1)


def check_rater_stack(raters: Any, name: str = "raters") -> None:
    """
    Raise unless ``raters`` has the shape of a rater stack ``(R, H, W)`` or ``(R, H, W, D)``: at least one rater,
    2 or 3 spatial axes and at least one voxel. Only the shape is read, so NumPy arrays pass as they are; the
    values (binary masks, integer label maps) are for the caller to check.

    Args:
        raters: a tensor or an array, one rater per index of axis 0.
        name: the argument name used in error messages. Defaults to ``"raters"``.

    Raises:
        ValueError: naming ``name`` and its shape.
    """
    shape = tuple(raters.shape)
    if len(shape) not in (3, 4):
        raise ValueError(
            f"{name} must have shape (R, H, W) or (R, H, W, D): R raters and 2 or 3 spatial dimensions, "
            f"got shape {shape} ({max(len(shape) - 1, 0)} spatial dimensions)."
        )
    if shape[0] == 0:
        raise ValueError(f"{name} must hold at least one rater (R >= 1), got R = 0 in shape {shape}.")
    if 0 in shape:
        raise ValueError(f"{name} must have at least one voxel, got shape {shape}.")


def check_rater_shapes(shapes: Iterable[tuple[str, Sequence[int]]], name: str = "raters") -> None:
    """
    Raise unless the raters (files, dictionary keys, annotations) of one case all have the shape of the first.

    Args:
        shapes: ``(label, shape)`` per rater, in order; the label names the rater in the message (a path, a key).
        name: what the raters are, for the message. Defaults to ``"raters"``.

    Raises:
        ValueError: naming ``name``, the first rater whose shape differs and the first rater, with both shapes.

    Example:
        >>> check_rater_shapes([("seg01.nii.gz", (6, 5)), ("seg02.nii.gz", (6, 4))], "rater files")
        Traceback (most recent call last):
        ...
        ValueError: rater files have different shapes: seg02.nii.gz has shape (6, 4) but seg01.nii.gz has (6, 5).
    """
    first: tuple[str, tuple[int, ...]] | None = None
    for label, shape in shapes:
        current = tuple(int(s) for s in shape)
        if first is None:
            first = (label, current)
        elif current != first[1]:
            raise ValueError(
                f"{name} have different shapes: {label} has shape {current} but {first[0]} has {first[1]}."
            )
