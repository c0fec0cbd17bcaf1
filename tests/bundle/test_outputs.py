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
"""What evaluation and inference write (``monai_dml.bundle.outputs``): case names, the file names of ``SaveImaged``,
the per-case metadata of ``MetricsSaver`` and the final metrics report."""

from __future__ import annotations

import os
import pathlib
from types import SimpleNamespace

import pytest
import torch
from monai.data import MetaTensor, list_data_collate
from monai.transforms import SaveImaged

from monai_dml.bundle import case_formatter, case_id, image_meta, report_metrics


# -- case_id -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, expected",
    [
        # layouts whose every case has the same file name: the case is the folder
        ("/a/case_00012/imaging.nii.gz", "case_00012"),
        ("/a/case_00012/segmentation.nii.gz", "case_00012"),
        ("/k/case_00001/aggregated_MAJ_seg.nii.gz", "case_00001"),
        ("/q/kidney/Training/case03/image.nii.gz", "case03"),
        # the others: the file stem, without .nii or .nii.gz
        ("/a/volume-3.nii", "volume-3"),
        ("/a/Training Batch 1/segmentation-4.nii", "segmentation-4"),
        ("/msd/imagesTr/liver_7.nii.gz", "liver_7"),
        ("relative/volume-10.nii.gz", "volume-10"),
        ("volume-11.nii", "volume-11"),
        (pathlib.Path("/a/case_00002/imaging.nii.gz"), "case_00002"),
    ],
)
def test_case_id(path, expected):
    assert case_id(path) == expected


# -- case_formatter ----------------------------------------------------------------------------------------------------
def test_case_formatter_names_the_case_and_keeps_the_patch_index():
    meta = {"filename_or_obj": "/a/case_00012/imaging.nii.gz", "patch_index": 3}
    assert case_formatter(meta, saver=None) == {"subject": "case_00012", "idx": 3}
    assert case_formatter({"filename_or_obj": "/a/volume-3.nii"}, saver=None) == {"subject": "volume-3", "idx": None}
    assert case_formatter({}, saver=None) == {"subject": "case", "idx": None}


def test_save_image_with_the_formatter_writes_case_files(tmp_path):
    image = MetaTensor(torch.zeros(1, 4, 4, 2), meta={"filename_or_obj": "/data/case_00007/imaging.nii.gz"})
    save = SaveImaged(
        "pred",
        output_dir=str(tmp_path),
        output_postfix="seg",
        output_name_formatter=case_formatter,
        separate_folder=False,
        print_log=False,
    )
    save({"pred": image})
    assert os.listdir(tmp_path) == ["case_00007_seg.nii.gz"]


# -- image_meta --------------------------------------------------------------------------------------------------------
def _item(name: str) -> dict:
    return {"image": MetaTensor(torch.zeros(1, 2, 2), meta={"filename_or_obj": name}), "label": torch.zeros(1, 2, 2)}


def test_image_meta_of_a_list_of_items():
    meta = image_meta([_item("a.nii.gz"), _item("b.nii.gz"), {"image": torch.zeros(1, 2, 2)}])
    assert [m.get("filename_or_obj") for m in meta] == ["a.nii.gz", "b.nii.gz", None]
    assert meta[2] == {}  # a plain tensor carries no metadata


def test_image_meta_of_a_collated_batch():
    batch = list_data_collate([_item("a.nii.gz"), _item("b.nii.gz")])
    meta = image_meta(batch)
    assert [m["filename_or_obj"] for m in meta] == ["a.nii.gz", "b.nii.gz"]
    assert all(isinstance(m, dict) for m in meta)


# -- report_metrics ----------------------------------------------------------------------------------------------------
def test_report_metrics_prints_sorted_numbers_and_returns_them(capsys):
    metrics = {"val_ece": 0.123456, "val_dice": 0.5, "count": 3, "curve": [0.1, 0.2], "name": "x"}
    engine = SimpleNamespace(state=SimpleNamespace(metrics=metrics))
    result = report_metrics(engine, title="fold 0")
    assert result == {"val_ece": 0.123456, "val_dice": 0.5, "count": 3.0}
    assert all(isinstance(v, float) for v in result.values())
    assert capsys.readouterr().out == "fold 0:\n  count: 3.0000\n  val_dice: 0.5000\n  val_ece: 0.1235\n"


def test_report_metrics_with_no_metric(capsys):
    engine = SimpleNamespace(state=SimpleNamespace(metrics={}))
    assert report_metrics(engine) == {}
    assert capsys.readouterr().out == "metrics:\n"
