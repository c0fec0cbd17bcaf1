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
"""STAPLE label fusion of several raters' segmentations into one soft label.

Warfield, S. K. et. al. (2004) Simultaneous Truth and Performance Level Estimation (STAPLE): An Algorithm for the
Validation of Image Segmentation. IEEE Transactions on Medical Imaging 23(7), 903-921.

The expectation-maximisation itself runs in ITK's ``itk.STAPLEImageFilter``
(https://itk.org/Doxygen/html/classitk_1_1STAPLEImageFilter.html); this module validates the raters, converts them
to ITK images and back, and handles the inputs on which the filter returns NaN. For raters ``j`` with decisions
``D_ij`` in {0, 1} at voxel ``i``, the filter alternates

.. math::

    W_i = \\frac{g \\prod_{j: D_{ij}=1} p_j \\prod_{j: D_{ij}=0} (1 - p_j)}
    {g \\prod_{j: D_{ij}=1} p_j \\prod_{j: D_{ij}=0} (1 - p_j)
    + (1 - g) \\prod_{j: D_{ij}=1} (1 - q_j) \\prod_{j: D_{ij}=0} q_j},
    \\qquad
    p_j = \\frac{\\sum_{i: D_{ij}=1} W_i}{\\sum_i W_i},\\quad
    q_j = \\frac{\\sum_{i: D_{ij}=0} (1 - W_i)}{\\sum_i (1 - W_i)},

starting from the rater average ``W_i = mean_j D_ij``, where ``p_j`` and ``q_j`` are rater ``j``'s sensitivity and
specificity and the prior ``g`` is ``confidence_weight`` times the mean foreground fraction of the raters. It stops
when no ``p_j`` or ``q_j`` changes by more than ``1e-7`` between two iterations, or after ``max_iterations``.

STAPLE is voxelwise (it has no spatial prior), so the order of the spatial axes does not matter: arrays are handed
to ITK as they are and the output comes back in the input's axis order.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.utils import convert_to_numpy, optional_import

from monai_dml.utils import check_label_map, check_rater_stack

itk, has_itk = optional_import("itk", allow_namespace_pkg=True)

__all__ = ["StapleResult", "staple_binary", "staple_multiclass"]

# ITK's own default: the filter iterates until it converges
_ITK_MAX_ITERATIONS = 2**32 - 1
# Pixel types tried in order. Double first: the filter keeps its posterior W in the output image between iterations,
# so a float output would round W at every iteration. ITK builds without double wrapping fall back to float.
_PIXEL_TYPES: tuple[str, ...] = ("D", "F")


class StapleResult(NamedTuple):
    """
    Output of :py:func:`staple_binary` and :py:func:`staple_multiclass`.

    ``K`` is 1 for :py:func:`staple_binary` and ``num_classes`` for :py:func:`staple_multiclass`; ``R`` is the number
    of raters. All tensors are on the device of the input raters (the CPU for NumPy input).

    Attributes:
        probability: float32, shape ``(K, *spatial)``: the STAPLE posterior probability of foreground (binary) or
            of each class (multiclass, summing to 1 over the classes), in [0, 1].
        sensitivity: float64, shape ``(R,)`` (binary) or ``(num_classes, R)`` (multiclass): each rater's estimated
            true positive fraction ``p``.
        specificity: float64, same shape as ``sensitivity``: each rater's estimated true negative fraction ``q``.
        iterations: int64, shape ``()`` (binary) or ``(num_classes,)``: ITK's ``GetElapsedIterations()``, the index
            of the iteration at which the filter stopped (``max_iterations`` when it did not converge); 0 for the
            degenerate inputs that ITK is not run on.
        converged: bool, same shape as ``iterations``: whether the filter met its convergence criterion before
            ``max_iterations``.
    """

    probability: torch.Tensor
    sensitivity: torch.Tensor
    specificity: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor


def staple_binary(
    raters: NdarrayOrTensor,
    foreground_value: float = 1.0,
    confidence_weight: float = 1.0,
    max_iterations: int | None = 1000,
) -> StapleResult:
    """
    Fuse binary masks of ``R`` raters into the STAPLE posterior probability of foreground.

    Warfield, S. K. et. al. (2004) Simultaneous Truth and Performance Level Estimation (STAPLE): An Algorithm for the
    Validation of Image Segmentation. IEEE Transactions on Medical Imaging 23(7), 903-921.

    Runs ``itk.STAPLEImageFilter`` on double images (float where the ITK build lacks them) with one input per rater.

    Degenerate inputs, on which ITK divides 0 by 0 and returns NaN everywhere, are not passed to ITK:

    - every rater empty (all 0): ``probability`` is 0 everywhere;
    - every rater full (all foreground): ``probability`` is 1 everywhere;

    and in both cases every ``sensitivity`` and ``specificity`` is 1.0 (the undefined one of the two is formally
    ``0 / 0``; each rater agrees with the consensus on every voxel), ``iterations`` is 0 and ``converged`` True.
    Identical raters that are neither empty nor full go to ITK, which returns their mask with ``p = q = 1``; a single
    rater (``R = 1``) gives back its own mask. Should ITK still return a non-finite probability at some voxel (not
    observed in practice), that voxel gets the fraction of raters that mark it, with a warning.

    Args:
        raters: binary masks, shape ``(R, H, W)`` or ``(R, H, W, D)`` with ``R >= 1``; NumPy array or torch tensor
            (boolean, integer or floating point) with values in {0, ``foreground_value``}.
        foreground_value: the value that marks foreground in ``raters``. Defaults to 1.0.
        confidence_weight: scales the prior foreground probability ``g`` (the mean foreground fraction of the
            raters), as ITK's ``SetConfidenceWeight``; the scaled prior must stay below 1. Defaults to 1.0.
        max_iterations: the most EM iterations ITK runs; ``None`` for ITK's default (iterate until convergence,
            which can take tens of thousands of iterations on near-symmetric inputs). Defaults to 1000.

    Returns:
        A :py:class:`StapleResult` with ``probability`` of shape ``(1, *spatial)`` (float32), ``sensitivity`` and
        ``specificity`` of shape ``(R,)`` (float64), scalar ``iterations`` and ``converged``.

    Raises:
        ImportError: when ITK is not installed.
        TypeError: when ``raters`` is not boolean, integer or floating point.
        ValueError: when ``raters`` has no rater, not 2 or 3 spatial dimensions, no voxel, NaN or Inf values, or
            values other than 0 and ``foreground_value``; when ``foreground_value`` is 0 or not finite; when
            ``confidence_weight`` is not positive and finite or makes the prior reach 1; when ``max_iterations``
            is not an integer in [1, 2**32 - 1].

    Example:
        >>> import torch
        >>> square = torch.zeros(8, 8)
        >>> square[2:6, 2:6] = 1
        >>> result = staple_binary(torch.stack([square, square, square]))
        >>> result.probability.shape
        torch.Size([1, 8, 8])
        >>> bool(torch.allclose(result.probability[0], square))
        True
    """
    _check_itk()
    arr, device = _as_numpy(raters)
    fg = float(foreground_value)
    if not np.isfinite(fg) or fg == 0:
        raise ValueError(f"foreground_value must be finite and non-zero (0 is background), got {foreground_value}.")
    is_fg = arr == fg
    other = ~(is_fg | (arr == 0))
    if other.any():
        found = np.unique(arr[other])
        shown = ", ".join(f"{v:g}" for v in found[:5].tolist()) + (", ..." if found.size > 5 else "")
        raise ValueError(
            f"raters must hold binary masks with values in {{0, {fg:g}}} (foreground_value={fg:g}), "
            f"got other values: {shown}."
        )
    cw, max_it = _check_options(confidence_weight, max_iterations)
    return _staple_mask(is_fg, cw, max_it, device)


def staple_multiclass(
    raters: NdarrayOrTensor, num_classes: int, confidence_weight: float = 1.0, max_iterations: int | None = 1000
) -> StapleResult:
    """
    Fuse integer label maps of ``R`` raters into per-class probabilities with one-vs-rest binary STAPLE.

    Warfield, S. K. et. al. (2004) Simultaneous Truth and Performance Level Estimation (STAPLE): An Algorithm for the
    Validation of Image Segmentation. IEEE Transactions on Medical Imaging 23(7), 903-921.

    For each class ``c``, :py:func:`staple_binary` runs on the masks ``raters == c``; the ``num_classes`` foreground
    probabilities are then stacked and divided by their sum at each voxel, so that they sum to 1. Where every class
    has probability 0 the voxel gets the uniform distribution ``1 / num_classes``. A class that no rater marks
    anywhere has probability 0 everywhere (before the renormalisation) and sensitivity and specificity 1.0, and a
    class that every rater marks everywhere has probability 1, as in :py:func:`staple_binary`.

    Note:
        This is one-vs-rest binary STAPLE, renormalised: each class gets its own sensitivity, specificity and prior
        per rater. It is not the multi-label STAPLE of ITK's ``MultiLabelSTAPLEImageFilter`` (one confusion matrix
        per rater), which the ITK Python wheels do not wrap; the two agree when the raters agree.

    Args:
        raters: integer label maps, shape ``(R, H, W)`` or ``(R, H, W, D)`` with ``R >= 1``, values in
            ``[0, num_classes)``; NumPy array or torch tensor (floating point input must hold whole numbers).
        num_classes: the number of classes, at least 2.
        confidence_weight: scales each class's prior, see :py:func:`staple_binary`. Defaults to 1.0.
        max_iterations: the most EM iterations per class, see :py:func:`staple_binary`. Defaults to 1000.

    Returns:
        A :py:class:`StapleResult` with ``probability`` of shape ``(num_classes, *spatial)`` (float32, summing to 1
        over the classes), ``sensitivity`` and ``specificity`` of shape ``(num_classes, R)`` (float64),
        ``iterations`` and ``converged`` of shape ``(num_classes,)``.

    Raises:
        ImportError: when ITK is not installed.
        TypeError: when ``raters`` is not boolean, integer or floating point.
        ValueError: when ``num_classes`` is not an integer >= 2; when ``raters`` has no rater, not 2 or 3 spatial
            dimensions, no voxel, NaN or Inf values, non-integer labels or labels outside ``[0, num_classes)``;
            for ``confidence_weight`` and ``max_iterations`` as in :py:func:`staple_binary`.

    Example:
        >>> import torch
        >>> labels = torch.tensor([[0, 1, 1], [0, 2, 2], [0, 0, 2]])
        >>> result = staple_multiclass(torch.stack([labels, labels]), num_classes=3)
        >>> result.probability.shape, result.sensitivity.shape
        (torch.Size([3, 3, 3]), torch.Size([3, 2]))
        >>> bool(torch.equal(result.probability.argmax(0), labels))
        True
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    _check_itk()
    arr, device = _as_numpy(raters)
    check_label_map(torch.as_tensor(arr), int(num_classes), "raters")
    cw, max_it = _check_options(confidence_weight, max_iterations)
    per_class = [_staple_mask(arr == c, cw, max_it, device) for c in range(int(num_classes))]
    probs = torch.cat([r.probability for r in per_class], dim=0).double()
    total = probs.sum(dim=0, keepdim=True)
    empty = total <= 0
    probs = torch.where(empty, torch.full_like(probs, 1.0 / num_classes), probs / torch.where(empty, 1.0, total))
    return StapleResult(
        probability=probs.float(),
        sensitivity=torch.stack([r.sensitivity for r in per_class]),
        specificity=torch.stack([r.specificity for r in per_class]),
        iterations=torch.stack([r.iterations for r in per_class]),
        converged=torch.stack([r.converged for r in per_class]),
    )


def _check_itk() -> None:
    if not has_itk:
        raise ImportError("STAPLE label fusion needs ITK's itk.STAPLEImageFilter; install ITK with `pip install itk`.")


def _as_numpy(raters: NdarrayOrTensor) -> tuple[np.ndarray, torch.device]:
    """Validate the raters' shape, dtype and finiteness; return them as a NumPy array and their torch device."""
    device = raters.device if isinstance(raters, torch.Tensor) else torch.device("cpu")
    if isinstance(raters, torch.Tensor) and raters.dtype == torch.bfloat16:
        raters = raters.float()  # NumPy has no bfloat16
    arr = convert_to_numpy(raters)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"raters must be a boolean, integer or floating-point array or tensor, got dtype {arr.dtype}.")
    check_rater_stack(arr, "raters")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("raters contains NaN or Inf values; STAPLE needs finite segmentations.")
    return arr, device


def _check_options(confidence_weight: float, max_iterations: int | None) -> tuple[float, int]:
    cw = float(confidence_weight)
    if not (np.isfinite(cw) and cw > 0):
        raise ValueError(f"confidence_weight must be positive and finite, got {confidence_weight}.")
    if max_iterations is None:
        return cw, _ITK_MAX_ITERATIONS
    if (
        isinstance(max_iterations, bool)
        or not isinstance(max_iterations, (int, np.integer))
        or not 1 <= max_iterations <= _ITK_MAX_ITERATIONS
    ):
        raise ValueError(f"max_iterations must be None or an integer in [1, 2**32 - 1], got {max_iterations!r}.")
    return cw, int(max_iterations)


def _staple_mask(mask: np.ndarray, confidence_weight: float, max_iterations: int, device: torch.device) -> StapleResult:
    """Binary STAPLE of the boolean masks ``(R, *spatial)``, with the degenerate cases handled before ITK."""
    n_raters = mask.shape[0]
    fraction = float(mask.mean())
    if fraction in (0.0, 1.0):
        # every rater empty or every rater full: ITK's p (or q) is 0 / 0 and its output NaN
        ones = torch.ones(n_raters, dtype=torch.float64, device=device)
        return StapleResult(
            probability=torch.full((1, *mask.shape[1:]), fraction, dtype=torch.float32, device=device),
            sensitivity=ones,
            specificity=ones.clone(),
            iterations=torch.tensor(0, dtype=torch.int64, device=device),
            converged=torch.tensor(True, device=device),
        )
    prior = fraction * confidence_weight
    if prior >= 1:
        raise ValueError(
            f"confidence_weight scales the prior foreground probability {fraction:.6g} to {prior:.6g}; it must stay "
            f"below 1, got confidence_weight={confidence_weight}."
        )
    prob, sens, spec, iters = _run_itk_staple(mask, confidence_weight, max_iterations)
    bad = ~np.isfinite(prob)
    if bad.any():
        warnings.warn(
            f"ITK's STAPLE returned {int(bad.sum())} non-finite probabilities; they are replaced by the fraction of "
            "raters that mark the voxel.",
            stacklevel=3,
        )
        prob = np.where(bad, mask.mean(axis=0), prob)
    return StapleResult(
        probability=torch.as_tensor(prob[None], dtype=torch.float32, device=device),
        sensitivity=torch.as_tensor(sens, dtype=torch.float64, device=device),
        specificity=torch.as_tensor(spec, dtype=torch.float64, device=device),
        iterations=torch.tensor(iters, dtype=torch.int64, device=device),
        converged=torch.tensor(iters < max_iterations, device=device),
    )


def _run_itk_staple(
    mask: np.ndarray, confidence_weight: float, max_iterations: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Run ``itk.STAPLEImageFilter`` on boolean masks ``(R, *spatial)``.

    Returns:
        The posterior ``(*spatial)`` as float64, sensitivities and specificities ``(R,)`` and the elapsed iterations.
    """
    ndim = mask.ndim - 1
    staple_type, dtype = _staple_filter_type(ndim)
    staple = staple_type.New()
    # the filter keeps a pointer to each input; the list keeps the images alive until Update has run
    images = [itk.image_from_array(np.ascontiguousarray(m, dtype=dtype)) for m in mask]
    for i, image in enumerate(images):
        staple.SetInput(i, image)
    staple.SetForegroundValue(1.0)
    staple.SetConfidenceWeight(confidence_weight)
    staple.SetMaximumIterations(max_iterations)
    staple.Update()
    prob = np.asarray(itk.array_from_image(staple.GetOutput()), dtype=np.float64)
    sens = np.array([staple.GetSensitivity(i) for i in range(len(images))], dtype=np.float64)
    spec = np.array([staple.GetSpecificity(i) for i in range(len(images))], dtype=np.float64)
    return prob, sens, spec, int(staple.GetElapsedIterations())


def _staple_filter_type(ndim: int) -> tuple[Any, type[np.floating]]:
    """The wrapped ``itk.STAPLEImageFilter`` type for ``ndim``-D images of the first pixel type in ``_PIXEL_TYPES``."""
    for name in _PIXEL_TYPES:
        try:
            image_type = itk.Image[getattr(itk, name), ndim]
            staple_type = itk.STAPLEImageFilter[image_type, image_type]
        except (KeyError, TypeError):  # itk.TemplateTypeError is a TypeError
            continue
        return staple_type, np.float64 if name == "D" else np.float32
    raise ImportError(
        f"this ITK build does not wrap itk.STAPLEImageFilter for {ndim}-D images of pixel types {_PIXEL_TYPES}; "
        "install the PyPI wheels with `pip install itk`."
    )
