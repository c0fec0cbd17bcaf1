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
"""Segmentation networks: DeepLabV3+ on MONAI's residual encoders, a MobileNetV2 encoder for FlexibleUNet and a
name-based network factory."""

from __future__ import annotations

from .deeplab import DeepLabV3Plus, deeplab_backbone_names
from .factory import NetworkName, build_network
from .mobilenetv2 import MOBILENETV2_SETTINGS, InvertedResidual, MobileNetV2Encoder

__all__ = [
    "MOBILENETV2_SETTINGS",
    "DeepLabV3Plus",
    "InvertedResidual",
    "MobileNetV2Encoder",
    "NetworkName",
    "build_network",
    "deeplab_backbone_names",
]
