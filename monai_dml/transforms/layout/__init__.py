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
"""Data-layout transforms: QUBIQ slices channel-first, one slice of a CT volume, KiTS21/23 annotations as raters."""

from __future__ import annotations

from .array import KITS_LABELS, ExtractSlice, KiTSAnnotations, PlanarChannels
from .dictionary import (
    ExtractSliceD,
    ExtractSliced,
    ExtractSliceDict,
    KiTSAnnotationsD,
    KiTSAnnotationsd,
    KiTSAnnotationsDict,
    PlanarChannelsD,
    PlanarChannelsd,
    PlanarChannelsDict,
)

__all__ = [
    "KITS_LABELS",
    "ExtractSlice",
    "ExtractSliceD",
    "ExtractSliceDict",
    "ExtractSliced",
    "KiTSAnnotations",
    "KiTSAnnotationsD",
    "KiTSAnnotationsDict",
    "KiTSAnnotationsd",
    "PlanarChannels",
    "PlanarChannelsD",
    "PlanarChannelsDict",
    "PlanarChannelsd",
]
