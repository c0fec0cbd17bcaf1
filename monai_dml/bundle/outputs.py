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
What evaluation and inference write: case names of output files, the per-case metadata of ``MetricsSaver``, and the
final metrics printed by ``evaluate.json``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from monai.data import decollate_batch

from monai_dml.data.utils import nifti_stem

__all__ = ["case_formatter", "case_id", "image_meta", "report_metrics"]

# file stems shared by every case of a layout; the case is then named by its folder
_GENERIC_STEMS = ("image", "imaging", "segmentation", "aggregated_MAJ_seg")


def case_id(path: str | os.PathLike) -> str:
    """
    A case name from an image path: the file stem (``volume-3``, ``liver_7``), or the folder's name for the layouts
    whose every case has the same file name (``case_00012/imaging.nii.gz`` -> ``case_00012``).
    """
    path = os.fspath(path)
    stem = nifti_stem(os.path.basename(path))
    return os.path.basename(os.path.dirname(path)) if stem in _GENERIC_STEMS else stem


def case_formatter(metadict: dict, saver: Any) -> dict:
    """
    ``SaveImaged(output_name_formatter=...)`` naming files by :py:func:`case_id`, so that inference writes
    ``<case>_<postfix>.nii.gz`` (``"output_name_formatter": "$dml.case_formatter"`` in a config).
    """
    return {"subject": case_id(str(metadict.get("filename_or_obj", "case"))), "idx": metadict.get("patch_index")}


def image_meta(batch: Any) -> list[dict[str, Any]]:
    """The image metadata of every item of a batch: ``MetricsSaver(batch_transform=...)`` names rows by file."""
    items = batch if isinstance(batch, list) else decollate_batch(batch)
    return [dict(getattr(item["image"], "meta", {})) for item in items]


def report_metrics(engine: Any, title: str = "metrics") -> dict[str, float]:
    """
    Print an engine's final metrics as ``name: value`` lines (the last step of ``evaluate.json``) and return them.
    Under DDP only rank 0 prints.
    """
    metrics = {k: float(v) for k, v in engine.state.metrics.items() if isinstance(v, int | float)}
    dist = torch.distributed.is_available() and torch.distributed.is_initialized()
    if not dist or torch.distributed.get_rank() == 0:
        print(f"{title}:")
        for name, value in sorted(metrics.items()):
            print(f"  {name}: {value:.4f}")
    return metrics
