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
"""DeepLabV3+ (Chen et al. 2018) on MONAI's residual encoders, for 2D and 3D segmentation.

The encoder is taken from the registry that :py:class:`monai.networks.nets.FlexibleUNet` uses
(:py:data:`monai.networks.nets.flexible_unet.FLEXUNET_BACKBONE`), so the backbone names and the optional
MedicalNet weights are exactly those of ``FlexibleUNet``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Conv, Pool
from monai.networks.nets.flexible_unet import FLEXUNET_BACKBONE
from monai.networks.nets.resnet import ResNetBlock, ResNetBottleneck, ResNetEncoder
from torch import nn

from monai_dml.utils import look_up_option

__all__ = ["DeepLabV3Plus", "deeplab_backbone_names"]


def deeplab_backbone_names() -> list[str]:
    """Names of the residual encoders registered for ``FlexibleUNet`` that :py:class:`DeepLabV3Plus` accepts.

    Returns:
        The registered names whose encoder class is :py:class:`monai.networks.nets.resnet.ResNetEncoder`
        (``"resnet10"``, ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"resnet101"``, ``"resnet152"``,
        ``"resnet200"`` in MONAI 1.6).
    """
    return [name for name, entry in FLEXUNET_BACKBONE.register_dict.items() if issubclass(entry["type"], ResNetEncoder)]


class _ZeroPadShortcut(nn.Module):
    """Parameter-free residual shortcut (ResNet option "A"): strided subsampling, then zero channel padding.

    MONAI's ``resnet18``/``resnet34`` build this shortcut as a ``functools.partial`` of a bound method, which
    TorchScript cannot compile, and pad ``out.data``, which ``torch.jit.trace`` records as a constant (the example
    input's shortcut, so a traced model is wrong for any other input). This module computes the same forward values
    with traceable, scriptable operations. By default the gradient flows through the shortcut, as in He et al.
    (2016); ``detach=True`` keeps MONAI's gradients (none through the shortcut) with ``detach()``, which tracing
    records as an operation.

    Args:
        spatial_dims: number of spatial dimensions, 2 or 3.
        out_channels: number of channels after padding (must be at least the input channel count).
        stride: subsampling step along each spatial axis.
        detach: stop the gradient through the shortcut, as MONAI's ``.data`` does. Defaults to False.
    """

    def __init__(self, spatial_dims: int, out_channels: int, stride: int, detach: bool = False) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.stride = stride
        self.detach = detach
        self.pool = Pool[Pool.AVG, spatial_dims](kernel_size=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Subsample and zero-pad channels.

        Args:
            x: tensor of shape ``(B, C, *spatial)``.

        Returns:
            Tensor of shape ``(B, out_channels, *ceil(spatial / stride))``.
        """
        out = self.pool(x)
        if self.detach:
            out = out.detach()
        shape = list(out.shape)
        shape[1] = self.out_channels - shape[1]
        return torch.cat([out, out.new_zeros(shape)], dim=1)


def _make_scriptable(encoder: nn.Module, spatial_dims: int, detach: bool = False) -> None:
    """Replace MONAI's ``functools.partial`` shortcuts by :py:class:`_ZeroPadShortcut` modules, in place; no
    parameter or buffer changes, so state dicts load either way."""
    for module in encoder.modules():
        if isinstance(module, (ResNetBlock, ResNetBottleneck)) and isinstance(module.downsample, partial):
            keywords = module.downsample.keywords
            planes, stride = int(keywords["planes"]), int(keywords["stride"])
            module.downsample = _ZeroPadShortcut(spatial_dims, planes, stride, detach=detach)


def _dilate_stage(stage: nn.Module, dilation: int) -> None:
    """Turn a strided residual stage into a dilated one with stride 1 (keeps every parameter shape), in place."""
    for module in stage.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            module.stride = (1,) * len(module.stride)
            if max(module.kernel_size) > 1:
                module.dilation = (dilation,) * len(module.kernel_size)
                module.padding = tuple(dilation * (k // 2) for k in module.kernel_size)
        elif isinstance(module, _ZeroPadShortcut):
            module.stride = 1
            module.pool.stride = 1


class _ASPP(nn.Module):
    """Atrous spatial pyramid pooling with an image-pooling branch (Chen et al. 2017, 2018).

    Branches: one 1x1 convolution, one 3x3 convolution per dilation rate, and a global average pool followed by
    a 1x1 convolution and the activation (no normalisation, so that a batch of one trains with batch norm).
    The concatenated branches are projected by a 1x1 convolution with normalisation, activation and dropout.

    Args:
        spatial_dims: number of spatial dimensions, 2 or 3.
        in_channels: channels of the input feature map.
        out_channels: channels of every branch and of the output.
        dilations: dilation rates of the 3x3 branches.
        norm: normalisation of the convolution branches and of the projection (``None`` for none).
        act: activation of every branch and of the projection.
        dropout: dropout probability after the projection.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        dilations: Sequence[int],
        norm: str | tuple | None,
        act: str | tuple | None,
        dropout: float,
    ) -> None:
        super().__init__()
        bias = norm is None
        branches = [Convolution(spatial_dims, in_channels, out_channels, kernel_size=1, act=act, norm=norm, bias=bias)]
        for rate in dilations:
            branches.append(
                Convolution(
                    spatial_dims, in_channels, out_channels, kernel_size=3, dilation=rate, act=act, norm=norm, bias=bias
                )
            )
        self.branches = nn.ModuleList(branches)
        self.pooling = nn.Sequential(
            Pool[Pool.ADAPTIVEAVG, spatial_dims](1),
            Convolution(spatial_dims, in_channels, out_channels, kernel_size=1, act=act, norm=None, bias=True),
        )
        self.project = Convolution(
            spatial_dims,
            out_channels * (len(branches) + 1),
            out_channels,
            kernel_size=1,
            act=act,
            norm=norm,
            dropout=dropout if dropout > 0 else None,
            bias=bias,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the pyramid.

        Args:
            x: feature map of shape ``(B, in_channels, *spatial)``.

        Returns:
            Tensor of shape ``(B, out_channels, *spatial)``.
        """
        outputs = [branch(x) for branch in self.branches]
        pooled = self.pooling(x)
        outputs.append(pooled.expand([-1, -1] + list(x.shape[2:])))
        return self.project(torch.cat(outputs, dim=1))


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ (Chen et al., ECCV 2018) on a MONAI residual encoder, for 2D or 3D images.

    Architecture: a ResNet encoder whose last stage(s) use dilation instead of stride (output stride 16 by
    default), an ASPP module with an image-pooling branch on the deepest features, and a decoder that upsamples
    the ASPP output to the stride-4 features, concatenates them with a 1x1 projection of those low-level features,
    refines with two 3x3 convolutions and classifies with a 1x1 convolution; the logits are interpolated
    (bilinear/trilinear) to the input size. The 3x3 convolutions are ordinary (not depthwise separable).

    The encoder is built from :py:data:`monai.networks.nets.flexible_unet.FLEXUNET_BACKBONE`, exactly as
    ``FlexibleUNet`` builds it; its normalisation is MONAI's fixed batch norm with ReLU (``norm`` and ``act``
    below only apply to the ASPP and decoder). For ``resnet18``/``resnet34`` the parameter-free "A" shortcuts are
    replaced by an equivalent module so that the whole network compiles with :py:func:`torch.jit.script`.

    The default rates ``(12, 24, 36)`` at output stride 16 are those of ``segmentation_models.pytorch``; the
    DeepLabV3 paper uses ``(6, 12, 18)`` at output stride 16 and ``(12, 24, 36)`` at output stride 8. On small
    feature maps, taps of a large rate fall into the zero padding, and the branch acts like a 1x1 convolution.

    Any input size works; the output always has the input's spatial size. Sizes that are multiples of 32 keep
    the feature maps aligned with the input grid. Training with a batch of one works while the deepest
    encoder map has more than one voxel (e.g. 2D inputs of 32x32 or larger at output stride 16).

    Args:
        spatial_dims: number of spatial dimensions, 2 or 3.
        in_channels: number of input channels.
        out_channels: number of output channels (classes).
        backbone: a residual encoder name from :py:func:`deeplab_backbone_names`, e.g. ``"resnet18"``,
            ``"resnet34"``, ``"resnet50"``.
        pretrained: load MONAI's pretrained encoder weights. MONAI only provides MedicalNet weights, for
            ``spatial_dims=3`` and ``in_channels=1``, downloaded from the Hugging Face hub (needs
            ``huggingface_hub`` and network access); other settings raise ``ValueError`` from MONAI.
        aspp_channels: channels of every ASPP branch and of the ASPP output.
        decoder_channels: channels of the two 3x3 decoder convolutions.
        low_level_channels: channels of the 1x1 projection of the stride-4 encoder features.
        dilations: dilation rates of the ASPP 3x3 branches.
        output_stride: encoder output stride, 8, 16 or 32 (the last two, one or zero residual stages are dilated).
        norm: normalisation of the ASPP and decoder convolutions, as accepted by MONAI's ``Convolution``
            (e.g. ``"batch"``, ``("group", {"num_groups": 8})``, ``"instance"``) or ``None``.
        act: activation of the ASPP and decoder convolutions.
        aspp_dropout: dropout probability after the ASPP projection (0.5 in the reference implementations).

    Raises:
        ValueError: if ``spatial_dims`` is not 2 or 3, a channel count is below 1, ``backbone`` is not a
            registered residual encoder, ``dilations`` is empty or has a rate below 1, ``output_stride`` is not
            8, 16 or 32, or ``aspp_dropout`` is outside ``[0, 1)``.

    Example::

        net = DeepLabV3Plus(spatial_dims=2, in_channels=1, out_channels=3, backbone="resnet18")
        logits = net(torch.randn(2, 1, 64, 64))  # (2, 3, 64, 64)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        backbone: str = "resnet50",
        pretrained: bool = False,
        aspp_channels: int = 256,
        decoder_channels: int = 256,
        low_level_channels: int = 48,
        dilations: Sequence[int] = (12, 24, 36),
        output_stride: int = 16,
        norm: str | tuple | None = "batch",
        act: str | tuple | None = "relu",
        aspp_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        for arg_name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("aspp_channels", aspp_channels),
            ("decoder_channels", decoder_channels),
            ("low_level_channels", low_level_channels),
        ):
            if value < 1:
                raise ValueError(f"{arg_name} must be at least 1, got {value}.")
        backbone = look_up_option(backbone, deeplab_backbone_names(), "backbone")
        dilations = tuple(int(d) for d in dilations)
        if len(dilations) == 0 or min(dilations) < 1:
            raise ValueError(f"dilations must be a non-empty sequence of rates >= 1, got {dilations}.")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}.")
        if not 0.0 <= aspp_dropout < 1.0:
            raise ValueError(f"aspp_dropout must be in [0, 1), got {aspp_dropout}.")

        entry = FLEXUNET_BACKBONE.register_dict[backbone]
        # copy: FlexibleUNet updates the registry's parameter dict in place
        encoder_parameters = dict(entry["parameter"])
        encoder_parameters.update({"spatial_dims": spatial_dims, "in_channels": in_channels, "pretrained": pretrained})
        encoder = entry["type"](**encoder_parameters)
        _make_scriptable(encoder, spatial_dims)
        if output_stride <= 16:
            _dilate_stage(encoder.layer4, 2 if output_stride == 16 else 4)
        if output_stride == 8:
            _dilate_stage(encoder.layer3, 2)
        self.encoder = encoder
        feature_channels = tuple(entry["feature_channel"])

        self.spatial_dims = spatial_dims
        self.interp_mode = "bilinear" if spatial_dims == 2 else "trilinear"
        self.aspp = _ASPP(spatial_dims, feature_channels[-1], aspp_channels, dilations, norm, act, aspp_dropout)
        bias = norm is None
        self.low_level_project = Convolution(
            spatial_dims, feature_channels[1], low_level_channels, kernel_size=1, act=act, norm=norm, bias=bias
        )
        self.fuse = nn.Sequential(
            Convolution(
                spatial_dims,
                aspp_channels + low_level_channels,
                decoder_channels,
                kernel_size=3,
                act=act,
                norm=norm,
                bias=bias,
            ),
            Convolution(spatial_dims, decoder_channels, decoder_channels, kernel_size=3, act=act, norm=norm, bias=bias),
        )
        self.classifier = Conv[Conv.CONV, spatial_dims](decoder_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segment a batch.

        Args:
            x: input of shape ``(B, in_channels, *spatial)`` with 2 or 3 spatial dimensions.

        Returns:
            Logits of shape ``(B, out_channels, *spatial)``, the input's spatial size.
        """
        features = self.encoder(x)
        low = self.low_level_project(features[1])  # stride 4
        high = self.aspp(features[-1])
        high = F.interpolate(high, size=low.shape[2:], mode=self.interp_mode, align_corners=False)
        out = self.classifier(self.fuse(torch.cat([high, low], dim=1)))
        return F.interpolate(out, size=x.shape[2:], mode=self.interp_mode, align_corners=False)
