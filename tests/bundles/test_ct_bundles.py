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
"""The LiTS and KiTS bundles (2D and 3D) end to end on generated data: train, evaluate, infer and every label mode."""

from __future__ import annotations

import csv
import glob
import json
import math
import os

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_dml.bundle import case_id
from monai_dml.data import kits_datalist, lits_datalist
from monai_dml.data.synthetic import generate_dataset
from tests.bundles.utils import TINY, TINY_NETWORK, error_chain, run_cli, workflow

# bundle -> synthetic layout
LAYOUTS = {"lits_2d": "lits", "kits_2d": "kits19", "lits_3d": "lits", "kits_3d": "kits21"}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("ct")
    return {
        layout: generate_dataset(layout, str(root / layout), num_cases=10, size=32, depth=16)
        for layout in sorted(set(LAYOUTS.values()))
    }


def _overrides(bundle: str) -> dict:
    return {**TINY[bundle], **TINY_NETWORK.get(bundle, {})}


def _train(bundle: str, root: str, data: str, names: tuple[str, ...] = ("train",), **overrides) -> None:
    wf = workflow(
        bundle, list(names), bundle_root=root, dataset_dir=data, **{"epochs": 1, **_overrides(bundle), **overrides}
    )
    wf.initialize()
    wf.run()
    wf.finalize()


def _infer(bundle: str, root: str, data: str, **overrides) -> None:
    size = {k: v for k, v in TINY[bundle].items() if k in ("image_size", "patch_size")}
    wf = workflow(
        bundle,
        ["inference"],
        "infer",
        bundle_root=root,
        dataset_dir=data,
        **{**size, **TINY_NETWORK.get(bundle, {}), **overrides},
    )
    wf.initialize()
    wf.run()
    wf.finalize()


def _source_images(bundle: str, data: str) -> list[str]:
    reader = lits_datalist if LAYOUTS[bundle] == "lits" else kits_datalist
    return [e["image"] for e in reader(data)]


@pytest.mark.parametrize("bundle", sorted(LAYOUTS))
def test_train_evaluate_infer_from_the_command_line(tmp_path, datasets, bundle):
    root, data = str(tmp_path), datasets[LAYOUTS[bundle]]
    out = run_cli(bundle, ["train"], bundle_root=root, dataset_dir=data, epochs=1, **_overrides(bundle))
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(os.listdir(os.path.join(root, "models"))) == ["checkpoint_last.pt", "model.pt"]

    out = run_cli(bundle, ["train", "evaluate"], bundle_root=root, dataset_dir=data, **_overrides(bundle))
    assert out.returncode == 0, out.stderr[-3000:]
    eval_dir = os.path.join(root, "eval")
    with open(os.path.join(eval_dir, "metrics.csv")) as f:
        summary = {row[0]: float(row[1]) for row in csv.reader(f) if row}
    assert set(summary) == {"val_dice", "val_ece", "val_volume_bias"}
    assert all(math.isfinite(v) for v in summary.values()), summary
    with open(os.path.join(eval_dir, "val_dice_raw.csv")) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["filename", "class0", "class1", "mean"]  # organ and tumour (background left out)
    assert len(rows) == 1 + 2  # the 2 volumes of fold 0
    assert os.path.isfile(os.path.join(eval_dir, "reliability_diagram.png"))
    assert len(glob.glob(os.path.join(eval_dir, "overlay_*.png"))) == 2

    overrides = {
        k: v for k, v in _overrides(bundle).items() if k in ("image_size", "patch_size", "network_def#features")
    }
    out = run_cli(bundle, ["inference"], bundle_root=root, dataset_dir=data, **overrides)
    assert out.returncode == 0, out.stderr[-3000:]
    val = _source_images(bundle, data)[:2]  # fold 0 of 10 contiguous cases
    for image in val:
        source = nib.load(image)
        seg = nib.load(os.path.join(root, "eval", "inference", f"{case_id(image)}_seg.nii.gz"))
        prob = nib.load(os.path.join(root, "eval", "inference", f"{case_id(image)}_prob.nii.gz"))
        np.testing.assert_allclose(seg.affine, source.affine, atol=1e-5)
        assert seg.shape == source.shape
        assert prob.shape == (*source.shape, 3)
        p = prob.get_fdata()
        np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-4)
        np.testing.assert_array_equal(seg.get_fdata(), p.argmax(-1))


@pytest.mark.parametrize("bundle", sorted(LAYOUTS))
def test_label_smoothing_trains(tmp_path, datasets, bundle):
    _train(bundle, str(tmp_path), datasets[LAYOUTS[bundle]], label_mode="ls", epsilon="@epsilon_auto")
    state = torch.load(os.path.join(tmp_path, "models", "checkpoint_last.pt"), weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.mark.parametrize("bundle", ["lits_2d", "kits_3d"])
def test_distillation_from_a_saved_teacher(tmp_path, datasets, bundle):
    data = datasets[LAYOUTS[bundle]]
    teacher_root = str(tmp_path / "teacher")
    _train(bundle, teacher_root, data, label_mode="hard")
    listing = tmp_path / "all.json"
    listing.write_text(json.dumps([{"image": image} for image in _source_images(bundle, data)]))
    _infer(bundle, teacher_root, data, input_dir=str(listing), output_dir=str(tmp_path / "probs"))
    assert len(glob.glob(str(tmp_path / "probs" / "*_prob.nii.gz"))) == 10
    student_root = str(tmp_path / "student")
    _train(bundle, student_root, data, ("train", "kd"), teacher_dir=str(tmp_path / "probs"))
    assert os.path.isfile(os.path.join(student_root, "models", "checkpoint_last.pt"))


def test_kits21_annotators_fused_into_soft_labels(tmp_path, datasets):
    _train("kits_3d", str(tmp_path), datasets["kits21"], label_mode="raters")
    assert os.path.isfile(os.path.join(tmp_path, "models", "checkpoint_last.pt"))


@pytest.mark.parametrize(
    "bundle, override, key",
    [
        ("lits_2d", {"label_mode": "uniform"}, "'label_mode'"),  # a QUBIQ mode
        ("kits_2d", {"label_mode": "raters"}, "'label_mode'"),  # 3D KiTS21/23 only
        ("lits_3d", {"fold": -1}, "'fold'"),
        ("lits_2d", {"label_mode": "kd"}, "'loss'"),  # kd without configs/kd.json
        ("kits_3d", {"layout": "kits99"}, "'layout'"),
    ],
)
def test_bad_keys_are_named(tmp_path, datasets, bundle, override, key):
    wf = workflow(bundle, ["train"], bundle_root=str(tmp_path), dataset_dir=datasets[LAYOUTS[bundle]], **override)
    with pytest.raises(Exception) as info:
        wf.initialize()
    assert key in error_chain(info.value)


def test_missing_teacher_file_is_named(tmp_path, datasets):
    wf = workflow("lits_2d", ["train", "kd"], bundle_root=str(tmp_path), dataset_dir=datasets["lits"])
    with pytest.raises(Exception) as info:
        wf.initialize()  # no teacher_dir at all
    assert "'teacher_dir'" in error_chain(info.value)
    wf = workflow("lits_2d", ["train", "kd"], bundle_root=str(tmp_path), dataset_dir=datasets["lits"])
    wf.parser["teacher_dir"] = str(tmp_path)
    with pytest.raises(Exception) as info:
        wf.initialize()
    assert "'teacher_dir'" in error_chain(info.value) and "volume-0_prob.nii.gz" in error_chain(info.value)
