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
"""Build the segmentation networks of the experiments by name."""

from __future__ import annotations

from typing import Any

from monai.networks.nets import BasicUNet, DynUNet, FlexibleUNet, SegResNet
from monai.utils import StrEnum
from torch import nn

from monai_dml.utils import look_up_option

from .deeplab import DeepLabV3Plus, _make_scriptable
from .mobilenetv2 import MobileNetV2Encoder  # registers FlexibleUNet's "mobilenetv2" backbone

__all__ = ["NetworkName", "build_network"]


class NetworkName(StrEnum):
    """Names accepted by :py:func:`build_network`."""

    UNET_RESNET18 = "unet-resnet18"
    UNET_RESNET50 = "unet-resnet50"
    UNET_EFFICIENTNET_B0 = "unet-efficientnet-b0"
    UNET_MOBILENETV2 = "unet-mobilenetv2"
    DEEPLABV3PLUS_RESNET18 = "deeplabv3plus-resnet18"
    DEEPLABV3PLUS_RESNET50 = "deeplabv3plus-resnet50"
    BASICUNET = "basicunet"
    SEGRESNET = "segresnet"
    DYNUNET = "dynunet"


# encoder of each FlexibleUNet / DeepLabV3Plus variant, as registered in monai's FLEXUNET_BACKBONE
_FLEXIBLE_UNET_BACKBONES = {
    NetworkName.UNET_RESNET18: "resnet18",
    NetworkName.UNET_RESNET50: "resnet50",
    NetworkName.UNET_EFFICIENTNET_B0: "efficientnet-b0",
    NetworkName.UNET_MOBILENETV2: MobileNetV2Encoder.backbone_names[0],
}
_DEEPLAB_BACKBONES = {
    NetworkName.DEEPLABV3PLUS_RESNET18: "resnet18",
    NetworkName.DEEPLABV3PLUS_RESNET50: "resnet50",
}


def _check_pretrained(name: NetworkName, spatial_dims: int, in_channels: int) -> None:
    """Raise ``ValueError`` where MONAI has no pretrained weights for ``name`` in this configuration."""
    if name in _DEEPLAB_BACKBONES or name in (NetworkName.UNET_RESNET18, NetworkName.UNET_RESNET50):
        if spatial_dims != 3 or in_channels != 1:
            raise ValueError(
                f"pretrained=True: MONAI has no pretrained weights for '{name}' with spatial_dims={spatial_dims} and "
                f"in_channels={in_channels}; its ResNet encoders only have MedicalNet weights for spatial_dims=3 "
                "and in_channels=1."
            )
    elif name == NetworkName.UNET_EFFICIENTNET_B0:
        if spatial_dims != 2:
            raise ValueError(
                f"pretrained=True: MONAI has no pretrained weights for '{name}' with spatial_dims={spatial_dims}; "
                "its EfficientNet ImageNet weights are 2D only (MONAI would silently keep the random weights)."
            )
    else:
        raise ValueError(f"pretrained=True: MONAI has no pretrained weights for '{name}'.")


def build_network(
    name: str,
    spatial_dims: int = 2,
    in_channels: int = 1,
    out_channels: int = 1,
    pretrained: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build a segmentation network by name.

    The networks (every one returns logits of shape ``(B, out_channels, *spatial)`` for an input of shape
    ``(B, in_channels, *spatial)``):

    - ``"unet-resnet18"``, ``"unet-resnet50"``, ``"unet-efficientnet-b0"``, ``"unet-mobilenetv2"``: the UNets with
      these encoders used in the paper, as :py:class:`monai.networks.nets.FlexibleUNet`; the MobileNetV2 encoder is
      this package's :py:class:`~monai_dml.networks.MobileNetV2Encoder`, registered with FlexibleUNet.
    - ``"deeplabv3plus-resnet18"``, ``"deeplabv3plus-resnet50"``: :py:class:`~monai_dml.networks.DeepLabV3Plus`.
    - ``"basicunet"``: :py:class:`monai.networks.nets.BasicUNet`.
    - ``"segresnet"``: :py:class:`monai.networks.nets.SegResNet`.
    - ``"dynunet"``: :py:class:`monai.networks.nets.DynUNet` with four downsamplings by default
      (``kernel_size=[3] * 5``, ``strides=[1, 2, 2, 2, 2]``, ``upsample_kernel_size=strides[1:]``), each
      overridable through ``kwargs``.

    Spatial sizes that are multiples of 32 work with every network. Every network compiles with
    ``torch.jit.script`` (for the ResNet18/34 UNets, MONAI's parameter-free shortcuts are replaced by an equivalent
    module with the same values and gradients), which is how the bundles export them; ``torch.jit.trace`` bakes in
    the example's spatial size wherever a network branches on shapes, so script rather than trace.

    Pretrained weights (``pretrained=True``) exist only where MONAI provides them, and are downloaded at
    construction; no weights can be downloaded offline, so set ``pretrained`` true only where the weights are
    reachable:

    - ``unet-efficientnet-b0``: ImageNet weights (from the EfficientNet-PyTorch GitHub releases), 2D only. With
      ``in_channels != 3`` the stem convolution keeps its random weights (MONAI skips mismatched shapes).
    - ``unet-resnet18``, ``unet-resnet50``, ``deeplabv3plus-*``: MedicalNet weights (Hugging Face hub, needs
      ``huggingface_hub``), only for ``spatial_dims=3`` and ``in_channels=1``; there are no 2D ResNet weights in
      MONAI (no torchvision ImageNet weights).
    - ``unet-mobilenetv2``, ``basicunet``, ``segresnet``, ``dynunet``: none.

    Args:
        name: network name, a :py:class:`NetworkName` value (case-insensitive).
        spatial_dims: number of spatial dimensions, 2 or 3.
        in_channels: number of input channels.
        out_channels: number of output channels (classes).
        pretrained: load the pretrained encoder weights (see above).
        kwargs: further keyword arguments of the underlying network's constructor, e.g. ``features`` for
            ``basicunet``, ``init_filters`` for ``segresnet``, ``filters`` for ``dynunet``, ``decoder_channels``
            for the UNets, ``aspp_channels`` for DeepLabV3+.

    Returns:
        The network, in training mode.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the options), ``spatial_dims`` is not 2 or 3,
            ``in_channels`` or ``out_channels`` is below 1, or ``pretrained`` is true for a network (or
            configuration) without pretrained weights.
    """
    network = look_up_option(name, NetworkName, "name")
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    if in_channels < 1:
        raise ValueError(f"in_channels must be at least 1, got {in_channels}.")
    if out_channels < 1:
        raise ValueError(f"out_channels must be at least 1, got {out_channels}.")
    if pretrained:
        _check_pretrained(network, spatial_dims, in_channels)

    if network in _FLEXIBLE_UNET_BACKBONES:
        unet = FlexibleUNet(
            in_channels,
            out_channels,
            backbone=_FLEXIBLE_UNET_BACKBONES[network],
            pretrained=pretrained,
            spatial_dims=spatial_dims,
            **kwargs,
        )
        # resnet18's "A" shortcuts: scriptable and traceable, with MONAI's values and gradients (detach = .data)
        _make_scriptable(unet.encoder, spatial_dims, detach=True)
        return unet
    if network in _DEEPLAB_BACKBONES:
        return DeepLabV3Plus(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            backbone=_DEEPLAB_BACKBONES[network],
            pretrained=pretrained,
            **kwargs,
        )
    if network == NetworkName.BASICUNET:
        return BasicUNet(spatial_dims, in_channels, out_channels, **kwargs)
    if network == NetworkName.SEGRESNET:
        return SegResNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, **kwargs)
    # NetworkName.DYNUNET
    strides = kwargs.pop("strides", [1, 2, 2, 2, 2])
    kernel_size = kwargs.pop("kernel_size", [3] * len(strides))
    upsample_kernel_size = kwargs.pop("upsample_kernel_size", list(strides)[1:])
    return DynUNet(
        spatial_dims,
        in_channels,
        out_channels,
        kernel_size=kernel_size,
        strides=strides,
        upsample_kernel_size=upsample_kernel_size,
        **kwargs,
    )
