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
"""MobileNetV2 (Sandler et al. 2018) as a 2D/3D encoder of MONAI's FlexibleUNet, registered as ``"mobilenetv2"``."""

from __future__ import annotations

import torch
from monai.networks.blocks import BaseEncoder
from monai.networks.layers.factories import Act, Conv, Norm
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from monai.networks.nets.flexible_unet import FLEXUNET_BACKBONE
from torch import nn

__all__ = ["MOBILENETV2_SETTINGS", "InvertedResidual", "MobileNetV2Encoder"]

# Sandler et al. (2018), Table 2: (expansion t, output channels c, repeats n, first stride s) of each bottleneck
# sequence, after a stride-2 3x3 convolution to 32 channels and before a 1x1 convolution to 1280 channels
MOBILENETV2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280
# indices into the stages [stem, bottleneck sequences 1-7, head] whose outputs are the features at strides 2 ... 32
_FEATURE_STAGES = (1, 2, 3, 5, 8)


def _conv_norm_act(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    groups: int,
    norm: str | tuple,
    act: str | tuple | None,
) -> nn.Sequential:
    layers: list[nn.Module] = [
        Conv[Conv.CONV, spatial_dims](
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        get_norm_layer(norm, spatial_dims=spatial_dims, channels=out_channels),
    ]
    if act is not None:
        layers.append(get_act_layer(act))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """
    The MobileNetV2 bottleneck (Sandler et al. 2018, Table 1): a 1x1 expansion to ``t * in_channels`` channels
    (omitted for ``t = 1``), a 3x3 depthwise convolution with stride ``s``, both with normalisation and ReLU6, and a
    linear 1x1 projection with normalisation; the input is added back where ``s = 1`` and the channels agree.

    Sandler, M. et. al. (2018) MobileNetV2: Inverted Residuals and Linear Bottlenecks. CVPR 2018.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the depthwise convolution, 1 or 2.
        expand_ratio: the expansion factor ``t`` (at least 1).
        norm: normalisation type and arguments. Defaults to batch norm.
        act: activation of the expansion and depthwise layers. Defaults to ReLU6.

    Raises:
        ValueError: when ``stride`` is not 1 or 2 or ``expand_ratio`` is below 1.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: int,
        norm: str | tuple = Norm.BATCH,
        act: str | tuple = Act.RELU6,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}.")
        if expand_ratio < 1:
            raise ValueError(f"expand_ratio must be at least 1, got {expand_ratio}.")
        hidden = in_channels * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_norm_act(spatial_dims, in_channels, hidden, 1, 1, 1, norm, act))
        layers.append(_conv_norm_act(spatial_dims, hidden, hidden, 3, stride, hidden, norm, act))
        layers.append(_conv_norm_act(spatial_dims, hidden, out_channels, 1, 1, 1, norm, None))
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, in_channels, *spatial)``; returns ``(B, out_channels, *spatial / stride)``."""
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Encoder(nn.Module, BaseEncoder):
    """
    The MobileNetV2 (width 1.0) feature extractor, without its classifier, as an encoder of
    :py:class:`monai.networks.nets.FlexibleUNet` (``backbone="mobilenetv2"``), 2D or 3D, randomly initialised.

    The layers are Table 2 of Sandler et al.: a 3x3 convolution with stride 2 to 32 channels, the seven bottleneck
    sequences of :data:`MOBILENETV2_SETTINGS` (:py:class:`InvertedResidual`) and a 1x1 convolution to 1280
    channels. The five outputs, at strides 2, 4, 8, 16 and 32, are the ends of the sequences with 16, 24, 32 and 96
    channels and of the final 1x1 convolution (1280 channels), the layers a UNet's skip connections use (as in
    segmentation_models_pytorch's MobileNetV2 encoder).

    Sandler, M. et. al. (2018) MobileNetV2: Inverted Residuals and Linear Bottlenecks. CVPR 2018.

    Args:
        spatial_dims: 2 or 3. Defaults to 2.
        in_channels: input channels. Defaults to 3.
        pretrained: must be False: there are no weights for this from-scratch encoder.
        norm: normalisation type and arguments. Defaults to batch norm.
        act: activation type and arguments. Defaults to ReLU6 (the paper's).

    Raises:
        ValueError: when ``pretrained`` is true, ``spatial_dims`` is not 2 or 3 or ``in_channels`` is below 1.

    Example:
        >>> import torch
        >>> encoder = MobileNetV2Encoder(spatial_dims=2, in_channels=1)
        >>> [tuple(f.shape[1:]) for f in encoder(torch.zeros(1, 1, 64, 64))]
        [(16, 32, 32), (24, 16, 16), (32, 8, 8), (96, 4, 4), (1280, 2, 2)]
    """

    backbone_names = ["mobilenetv2"]

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        pretrained: bool = False,
        norm: str | tuple = Norm.BATCH,
        act: str | tuple = Act.RELU6,
    ) -> None:
        super().__init__()
        if pretrained:
            raise ValueError(
                "pretrained=True: there are no pretrained weights for the MobileNetV2 encoder (built from scratch)."
            )
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}.")
        stages: list[nn.Module] = [_conv_norm_act(spatial_dims, in_channels, _STEM_CHANNELS, 3, 2, 1, norm, act)]
        channels = _STEM_CHANNELS
        for t, c, n, s in MOBILENETV2_SETTINGS:
            blocks = []
            for i in range(n):
                blocks.append(InvertedResidual(spatial_dims, channels, c, s if i == 0 else 1, t, norm, act))
                channels = c
            stages.append(nn.Sequential(*blocks))
        stages.append(_conv_norm_act(spatial_dims, channels, _HEAD_CHANNELS, 1, 1, 1, norm, act))
        self.stages = nn.ModuleList(stages)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm)) and module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """
        Args:
            x: ``(B, in_channels, *spatial)``, each spatial size a multiple of 32 for the strides to be exact.

        Returns:
            The five feature maps ``(B, c, *spatial / 2^k)`` for ``(c, k)`` in ``(16, 1), (24, 2), (32, 3), (96, 4),
            (1280, 5)``.
        """
        features: list[torch.Tensor] = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in _FEATURE_STAGES:
                features.append(x)
        return features

    @classmethod
    def get_encoder_parameters(cls) -> list[dict]:
        """The constructor arguments per registered name (FlexibleUNet sets ``spatial_dims``, ``in_channels``,
        ``pretrained``)."""
        return [{"spatial_dims": 2, "in_channels": 3, "pretrained": False}]

    @classmethod
    def num_channels_per_output(cls) -> list[tuple[int, ...]]:
        """The channels of the five feature maps."""
        return [(16, 24, 32, 96, _HEAD_CHANNELS)]

    @classmethod
    def num_outputs(cls) -> list[int]:
        """Five feature maps."""
        return [5]

    @classmethod
    def get_encoder_names(cls) -> list[str]:
        """``["mobilenetv2"]``."""
        return cls.backbone_names


FLEXUNET_BACKBONE.register_class(MobileNetV2Encoder)
