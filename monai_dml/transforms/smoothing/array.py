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
"""Label smoothing of channel-first segmentation labels: uniform, boundary-only and spatially varying (SVLS)."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import NdarrayOrTensor
from monai.data import get_track_meta
from monai.transforms.transform import Transform
from monai.utils import StrEnum, TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor

from monai_dml.utils import check_probability_map, check_soft_target, look_up_option, one_hot_label_map

__all__ = ["LabelSmoothing", "LabelSmoothingMethod"]


class LabelSmoothingMethod(StrEnum):
    """
    Label smoothing methods of :py:class:`LabelSmoothing`.

    - ``UNIFORM``: every voxel moves towards the uniform distribution (Szegedy et al. 2016).
    - ``BOUNDARY``: the uniform rule applied only to voxels near a label boundary (Wang et al. 2023).
    - ``SVLS``: spatially varying label smoothing, a convolution with the SVLS kernel (Islam and Glocker 2021).
    """

    UNIFORM = "uniform"
    BOUNDARY = "boundary"
    SVLS = "svls"


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_epsilon(epsilon: float) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, Real) or not 0 <= float(epsilon) < 1:
        raise ValueError(f"epsilon must be a number in [0, 1), got {epsilon!r}.")
    return float(epsilon)


def _svls_kernel(kernel_size: int, sigma: float, spatial_dims: int, device: torch.device) -> torch.Tensor:
    """
    The normalised SVLS kernel of shape ``(1, 1) + (kernel_size,) * spatial_dims``; its centre weight is 1/2.
    """
    offsets = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    grids = torch.meshgrid(*([offsets] * spatial_dims), indexing="ij")
    squared_distance = torch.stack(grids).pow(2).sum(0)
    weights = torch.exp(-squared_distance / (2.0 * sigma**2))
    centre = (kernel_size // 2,) * spatial_dims
    weights[centre] = 0.0
    weights[centre] = weights.sum()
    weights = weights / weights.sum()
    return weights.to(device=device, dtype=torch.float32)[None, None]


class LabelSmoothing(Transform):
    """
    Label smoothing of a channel-first segmentation label of 2 or 3 spatial dimensions (no batch axis).

    The input is one of

    - a one-hot or soft label ``(C, H, W[, D])``, ``C >= 2``, with values in [0, 1] that sum to 1 over the
      channels; the output has the same shape;
    - a binary foreground map ``(1, H, W[, D])`` with values in [0, 1], smoothed as the two classes
      ``[1 - y, y]`` and returned as the smoothed foreground channel ``(1, H, W[, D])``;
    - with ``num_classes=K``, an integer label map ``(1, H, W[, D])`` with values in ``[0, K)``, one-hot
      converted first; the output is ``(K, H, W[, D])``.

    With :math:`y` the label of a voxel as ``K`` class probabilities (``K = 2`` for a binary map), the methods are

    - ``"uniform"`` (Szegedy et al. 2016), applied to every voxel:

      .. math::

          y' = (1 - \\epsilon)\\, y + \\frac{\\epsilon}{K}

    - ``"boundary"``: the uniform rule applied only to the voxels within ``width`` voxels (Chebyshev distance,
      i.e. the ``(2 width + 1)^d`` box centred on the voxel, clipped at the image border) of a label boundary;
      every other voxel keeps its label. The class of a voxel is its argmax over the channels (for a binary map:
      foreground iff ``y > 0.5``), and a voxel is smoothed iff its box holds more than one class:

      .. math::

          y'_v = \\begin{cases} (1 - \\epsilon)\\, y_v + \\epsilon / K
          & \\text{if } \\max_{u \\in N_w(v)} c_u \\neq \\min_{u \\in N_w(v)} c_u \\\\
          y_v & \\text{otherwise} \\end{cases}

      so both sides of a boundary are smoothed (``width`` voxels deep on each side), and the image border is
      not a boundary. This is the label smoothing of the reference implementation of Wang et al. (JDTLosses,
      ``train_soft_label.py``: ``get_label_boundary``/``smoothing_label``), whose window size ``k`` is
      ``2 * width + 1``: its setting ``k=3, epsilon=0.5`` is ``width=1, epsilon=0.5`` here.

    - ``"svls"`` (Islam and Glocker 2021): every class channel is convolved with the SVLS kernel :math:`w`,
      a Gaussian over the offsets :math:`x \\in \\{-r, \\dots, r\\}^d` (``r = (kernel_size - 1) / 2``) whose centre
      weight is replaced by the sum of the other weights, then normalised to sum 1:

      .. math::

          g(x) = \\exp\\left(-\\frac{\\|x\\|_2^2}{2 \\sigma^2}\\right), \\qquad
          w(x) = \\frac{g(x)}{2 S} \\; (x \\neq 0), \\qquad w(0) = \\frac{1}{2}, \\qquad
          S = \\sum_{x \\neq 0} g(x)

      The image is padded by replicating its edge voxels, so the channels still sum to 1 at the border.
      ``epsilon`` is not used by this method.

    Szegedy, C. et. al. (2016) Rethinking the Inception Architecture for Computer Vision. CVPR 2016.

    Islam, M. and Glocker, B. (2021) Spatially Varying Label Smoothing: Capturing Uncertainty from Expert
    Annotations. IPMI 2021.

    Wang, Z. et. al. (2023) Dice Semimetric Losses: Optimizing the Dice Score with Soft Labels. MICCAI 2023.

    Example:
        >>> import numpy as np
        >>> smooth = LabelSmoothing(method="uniform", epsilon=0.5)
        >>> smooth(np.array([[[0.0, 0.0, 1.0, 1.0]]]))  # binary map (1, 1, 4): [1 - y, y] smoothed, y returned
        array([[[0.25, 0.25, 0.75, 0.75]]], dtype=float32)
        >>> LabelSmoothing(method="boundary", epsilon=0.5, width=1, num_classes=3)(
        ...     np.array([[[0, 0, 0, 2, 2]]])
        ... )[:, 0].round(4)  # integer map (1, 1, 5) -> (3, 1, 5); voxels 2 and 3 touch the boundary
        array([[1.    , 1.    , 0.6667, 0.1667, 0.    ],
               [0.    , 0.    , 0.1667, 0.1667, 0.    ],
               [0.    , 0.    , 0.1667, 0.6667, 1.    ]], dtype=float32)
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        method: LabelSmoothingMethod | str = LabelSmoothingMethod.UNIFORM,
        epsilon: float = 0.1,
        num_classes: int | None = None,
        width: int = 1,
        sigma: float = 1.0,
        kernel_size: int = 3,
    ) -> None:
        """
        Args:
            method: {``"uniform"``, ``"boundary"``, ``"svls"``}. Defaults to ``"uniform"``.

                - ``"uniform"``: smooth every voxel (Szegedy et al. 2016).
                - ``"boundary"``: smooth the voxels within ``width`` voxels of a label boundary.
                - ``"svls"``: convolve each class channel with the SVLS kernel (Islam and Glocker 2021).
            epsilon: smoothing factor in [0, 1) of ``"uniform"`` and ``"boundary"``; 0 returns the input.
                Not used by ``"svls"``. Defaults to 0.1.
            num_classes: if given, the input is a single-channel integer label map with values in
                ``[0, num_classes)``, one-hot converted to ``num_classes`` channels before smoothing.
                Defaults to None: the input is one-hot/soft, or a single-channel binary map.
            width: half-width (Chebyshev radius, >= 1) of the box around a voxel that ``"boundary"`` searches for
                another class. Defaults to 1 (the reference implementation's window k=3).
            sigma: standard deviation (> 0, in voxels) of the Gaussian of the SVLS kernel. Defaults to 1.0.
            kernel_size: size of the SVLS kernel along each spatial axis, odd and >= 3. Defaults to 3.

        Raises:
            ValueError: for an unknown ``method``, ``epsilon`` outside [0, 1), ``num_classes < 2``,
                ``width < 1``, ``sigma <= 0`` or not finite, or ``kernel_size`` even or < 3.
        """
        self.method = look_up_option(method, LabelSmoothingMethod, "method")
        self.epsilon = _check_epsilon(epsilon)
        if num_classes is not None and (not _is_int(num_classes) or num_classes < 2):
            raise ValueError(f"num_classes must be None or an integer >= 2, got {num_classes!r}.")
        if not _is_int(width) or width < 1:
            raise ValueError(f"width must be an integer >= 1, got {width!r}.")
        if isinstance(sigma, bool) or not isinstance(sigma, Real) or not (0 < float(sigma) < math.inf):
            raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}.")
        if not _is_int(kernel_size) or kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer >= 3, got {kernel_size!r}.")
        self.num_classes: int | None = None if num_classes is None else int(num_classes)
        self.width: int = int(width)
        self.sigma: float = float(sigma)
        self.kernel_size: int = int(kernel_size)

    def __call__(
        self, img: NdarrayOrTensor, epsilon: float | None = None, method: LabelSmoothingMethod | str | None = None
    ) -> NdarrayOrTensor:
        """
        Args:
            img: ``(C, H, W[, D])`` one-hot/soft label, ``(1, H, W[, D])`` binary foreground map, or with
                ``num_classes``, ``(1, H, W[, D])`` integer label map.
            epsilon: overrides ``self.epsilon`` for this call. Defaults to None.
            method: overrides ``self.method`` for this call. Defaults to None.

        Returns:
            float32 smoothed label, ``(C, H, W[, D])`` for a one-hot/soft or binary input and
            ``(num_classes, H, W[, D])`` for an integer map; a NumPy array for a NumPy input, otherwise a tensor on
            the input's device: a MetaTensor with the metadata of ``img`` while ``monai.data.get_track_meta()`` is
            True (MONAI's default), else a ``torch.Tensor``.

        Raises:
            ValueError: when ``img`` does not have 2 or 3 spatial dimensions, contains NaN or Inf, has values
                outside [0, 1] (one-hot/soft/binary), channels that do not sum to 1 (multi-channel), more than
                one channel or values outside ``[0, num_classes)`` (integer map); or for an invalid override.
        """
        method_ = self.method if method is None else look_up_option(method, LabelSmoothingMethod, "method")
        eps = self.epsilon if epsilon is None else _check_epsilon(epsilon)
        dst = img if isinstance(img, np.ndarray) else convert_to_tensor(img, track_meta=get_track_meta())
        img_t = convert_to_tensor(img, track_meta=False)
        if img_t.ndim not in (3, 4):
            raise ValueError(
                f"img must be channel-first with 2 or 3 spatial dimensions, (C, H, W) or (C, H, W, D), "
                f"got shape {tuple(img_t.shape)}."
            )
        probs, binary = self._to_probabilities(img_t)

        if method_ == LabelSmoothingMethod.SVLS:
            out = self._svls(probs)
        else:
            out = (1.0 - eps) * probs + eps / probs.shape[0]
            if method_ == LabelSmoothingMethod.BOUNDARY:
                out = torch.where(self._boundary_mask(probs), out, probs)
        out = out.clamp(0.0, 1.0)
        if binary:
            out = out[1:]
        result, *_ = convert_to_dst_type(out, dst, dtype=torch.float32)
        return result

    def _to_probabilities(self, img: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Checks ``img`` and returns its ``(K, spatial...)`` float32 class probabilities and whether it is binary."""
        if img.dtype == torch.bool:
            img = img.to(torch.uint8)
        if self.num_classes is not None:
            return one_hot_label_map(img, self.num_classes, "img", dim=0), False
        if img.shape[0] == 1:
            check_soft_target(img, "img", hint="Pass num_classes for an integer label map.")
            probs = img.to(torch.float32)
            return torch.cat([1.0 - probs, probs]), True
        check_probability_map(img, "img")
        return img.to(torch.float32), False

    def _boundary_mask(self, probs: torch.Tensor) -> torch.Tensor:
        """``(1, spatial...)`` bool: the box of half-width ``self.width`` around the voxel holds two classes."""
        classes = probs.argmax(0, keepdim=True).to(torch.float32)[None]  # (1, 1, spatial...)
        pool = F.max_pool2d if probs.ndim == 3 else F.max_pool3d
        window = 2 * self.width + 1
        highest = pool(classes, kernel_size=window, stride=1, padding=self.width)
        lowest = -pool(-classes, kernel_size=window, stride=1, padding=self.width)
        return (highest != lowest)[0]

    def _svls(self, probs: torch.Tensor) -> torch.Tensor:
        """Each channel of ``(K, spatial...)`` convolved with the SVLS kernel, edge-replicate padding."""
        spatial_dims = probs.ndim - 1
        kernel = _svls_kernel(self.kernel_size, self.sigma, spatial_dims, probs.device)
        radius = self.kernel_size // 2
        padded = F.pad(probs[:, None], (radius,) * (2 * spatial_dims), mode="replicate")
        conv = F.conv2d if spatial_dims == 2 else F.conv3d
        return conv(padded, kernel)[:, 0]
