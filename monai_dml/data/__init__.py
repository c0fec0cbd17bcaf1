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
"""
Data sets of the paper: readers of the real QUBIQ, LiTS and KiTS layouts that return MONAI data lists with
cross-validation folds, a 2D slice index, preprocessing chains, data-list JSON files and a synthetic generator.
"""

from __future__ import annotations

from typing import Any

from monai_dml.transforms.layout import (
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

from .datalist import PATH_KEYS, load_datalist, write_datalist
from .folds import FoldMethod, assign_folds, natural_key, split_folds
from .kits import KITS_LABELS, kits_datalist
from .lits import LITS_LABELS, lits_datalist
from .preprocessing import KITS_HU_WINDOW, LITS_HU_WINDOW, ct_2d_transforms, ct_3d_transforms, qubiq_2d_transforms
from .qubiq import QUBIQ_DATASETS, QUBIQ_RATERS, QUBIQ_TABLE1, check_qubiq_files, qubiq_datalist, qubiq_rater_agreement
from .slices import axial_axis, build_slice_index
from .utils import IncompletePolicy

# the generator is imported on first use, so that ``python -m monai_dml.data.synthetic`` runs it fresh
_SYNTHETIC = (
    "Layout",
    "QUBIQ_NOISE",
    "QUBIQ_SUB_DATASETS",
    "QubiqSubDataset",
    "RaterNoise",
    "generate_dataset",
    "generate_kits",
    "generate_lits",
    "generate_qubiq",
    "perturb_mask",
    "synthesize_qubiq_case",
    "write_ct_volume",
)


def __getattr__(name: str) -> Any:
    if name in _SYNTHETIC:
        from . import synthetic

        return getattr(synthetic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# PlanarChannelsd, ExtractSliced and KiTSAnnotationsd (with their aliases) are defined in monai_dml.transforms.layout
# and re-exported here, where bundles imported them before they moved
__all__ = [
    "KITS_HU_WINDOW",
    "KITS_LABELS",
    "LITS_HU_WINDOW",
    "LITS_LABELS",
    "PATH_KEYS",
    "QUBIQ_DATASETS",
    "QUBIQ_RATERS",
    "QUBIQ_TABLE1",
    "ExtractSliceD",
    "ExtractSliceDict",
    "ExtractSliced",
    "FoldMethod",
    "IncompletePolicy",
    "KiTSAnnotationsD",
    "KiTSAnnotationsDict",
    "KiTSAnnotationsd",
    "PlanarChannelsD",
    "PlanarChannelsDict",
    "PlanarChannelsd",
    "assign_folds",
    "axial_axis",
    "build_slice_index",
    "check_qubiq_files",
    "ct_2d_transforms",
    "ct_3d_transforms",
    "kits_datalist",
    "lits_datalist",
    "load_datalist",
    "natural_key",
    "qubiq_2d_transforms",
    "qubiq_datalist",
    "qubiq_rater_agreement",
    "split_folds",
    "write_datalist",
    *_SYNTHETIC,
]
