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
"""The QUBIQ 2D bundle end to end on generated data: train, evaluate, infer, label modes, resume, DDP, errors."""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Events

from monai_dml.data.synthetic import generate_qubiq
from tests.bundles.utils import BUNDLES_DIR, TINY, configs, error_chain, run_cli, workflow

BUNDLE = "qubiq_2d"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("qubiq") / "data")
    return generate_qubiq(out, num_cases=10, size=32, datasets=["kidney"])


def _epochs(path: str) -> int:
    """Epochs completed in a saved checkpoint (ignite stores the iteration and the epoch length)."""
    trainer = torch.load(path, weights_only=True)["trainer"]
    return trainer["iteration"] // trainer["epoch_length"]


def _train(root: str, data: str, **overrides) -> None:
    wf = workflow(BUNDLE, ["train"], bundle_root=root, dataset_dir=data, **{"epochs": 1, **TINY[BUNDLE], **overrides})
    wf.initialize()
    wf.run()
    wf.finalize()


def test_train_evaluate_infer_from_the_command_line(tmp_path, data_dir):
    root = str(tmp_path)
    out = run_cli(BUNDLE, ["train"], bundle_root=root, dataset_dir=data_dir, epochs=1, **TINY[BUNDLE])
    assert out.returncode == 0, out.stderr[-3000:]
    assert os.path.isfile(os.path.join(root, "models", "model.pt"))
    assert os.path.isfile(os.path.join(root, "models", "checkpoint_last.pt"))

    out = run_cli(BUNDLE, ["train", "evaluate"], bundle_root=root, dataset_dir=data_dir, **TINY[BUNDLE])
    assert out.returncode == 0, out.stderr[-3000:]
    assert "val_dice" in out.stdout and "val_bdice" in out.stdout
    eval_dir = os.path.join(root, "eval")
    with open(os.path.join(eval_dir, "val_dice_raw.csv")) as f:
        rows = list(csv.reader(f))
    assert len(rows) == 1 + 2  # header + the 2 cases of fold 0 (10 cases, 5 folds)
    with open(os.path.join(eval_dir, "metrics.csv")) as f:
        summary = {row[0]: row[1] for row in csv.reader(f) if row}
    for name in ("val_dice", "val_bdice", "val_ece", "val_volume_bias"):
        assert math.isfinite(float(summary[name])), name
    assert 0.0 <= float(summary["val_ece"]) <= 1.0
    assert os.path.isfile(os.path.join(eval_dir, "reliability_diagram.png"))
    overlays = [f for f in os.listdir(eval_dir) if f.startswith("overlay_") and f.endswith(".png")]
    assert len(overlays) == 2

    out = run_cli(BUNDLE, ["inference"], bundle_root=root, dataset_dir=data_dir, image_size=32)
    assert out.returncode == 0, out.stderr[-3000:]
    infer_dir = os.path.join(root, "eval", "inference")
    for case in ("case01", "case02"):
        source = nib.load(os.path.join(data_dir, "kidney", "Training", case, "image.nii.gz"))
        for kind in ("prob", "seg"):
            written = nib.load(os.path.join(infer_dir, f"{case}_{kind}.nii.gz"))
            np.testing.assert_allclose(written.affine, source.affine)
            assert written.shape == source.shape[:2]  # the (H, W, 1) kidney slice is written as (H, W)
        prob = nib.load(os.path.join(infer_dir, f"{case}_prob.nii.gz")).get_fdata()
        seg = nib.load(os.path.join(infer_dir, f"{case}_seg.nii.gz")).get_fdata()
        assert prob.min() >= 0.0 and prob.max() <= 1.0
        np.testing.assert_array_equal(seg, prob > 0.5)


@pytest.mark.parametrize("label_mode", ["majority", "random", "uniform", "weighted", "staple", "ls"])
def test_every_label_mode_trains(tmp_path, data_dir, label_mode):
    wf = workflow(BUNDLE, ["train"], bundle_root=str(tmp_path), dataset_dir=data_dir, epochs=1, label_mode=label_mode)
    for key, value in TINY[BUNDLE].items():
        wf.parser[key] = value
    wf.initialize()
    # what the mode trains on, for the kidney's 3 raters: the values a pixel's target can take
    allowed = {
        "majority": {0.0, 1.0},
        "random": {0.0, 1.0},
        "uniform": {0.0, 1 / 3, 2 / 3, 1.0},
        "weighted": None,  # Dice-weighted mean: values between the raters' extremes
        "staple": "posterior",  # STAPLE's posteriors (near 0/1 on this set; their values: tests/bundle/test_recipes.py)
        "ls": {0.05, 0.95},  # the majority vote smoothed with epsilon 0.1 over two classes
    }[label_mode]
    labels = torch.cat(
        [torch.as_tensor(item["label"]).flatten() for item in wf.parser.get_parsed_content("train#dataset")]
    )
    values = {round(float(v), 4) for v in labels.unique()}
    if allowed == "posterior":
        assert min(values) >= 0 and max(values) <= 1 and labels.dtype.is_floating_point
    elif allowed is not None:
        assert values == {round(v, 4) for v in allowed}, (label_mode, values)
    else:
        assert len(values - {0.0, 1.0}) > 0 and min(values) >= 0 and max(values) <= 1  # soft, not a vote
    wf.run()
    wf.finalize()
    path = os.path.join(tmp_path, "models", "checkpoint_last.pt")
    assert _epochs(path) == 1
    state = torch.load(path, weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_epsilon_heuristic_and_variants(tmp_path, data_dir):
    """``--epsilon @epsilon_auto`` puts the Tilborghs et al. heuristic, E[sum y] over the loss's domain, in loss."""
    wf = workflow(BUNDLE, ["train"], bundle_root=str(tmp_path), dataset_dir=data_dir, epochs=1, **TINY[BUNDLE])
    for key, value in {"epsilon": "@epsilon_auto", "variant": "dml2", "phi": "BI", "label_mode": "majority"}.items():
        wf.parser[key] = value
    wf.initialize()
    loss = wf.parser.get_parsed_content("loss")
    assert loss.dml.variant == "dml2" and loss.dml.phi == "BI"
    # independently: the mean foreground area of the majority votes of the training cases at the trained size
    areas = []
    for entry in wf.parser.get_parsed_content("data").train_data():
        votes = np.stack([nib.load(f).get_fdata().squeeze() > 0 for f in entry["raters"]])
        majority = (votes.mean(0) > 0.5).astype(np.float32)  # the QUBIQ rule: more than half the raters
        size = TINY[BUNDLE]["image_size"]
        resized = torch.nn.functional.interpolate(torch.from_numpy(majority)[None, None], (size, size), mode="nearest")
        areas.append(float(resized.sum()))
    # phi="BI" sums over the batch, so E[sum y] over that domain is batch_size times the per-image mean
    expected = TINY[BUNDLE]["batch_size"] * np.mean(areas)
    np.testing.assert_allclose(float(loss.dml.smooth_nr), expected, rtol=1e-5)
    wf.run()
    assert _epochs(os.path.join(tmp_path, "models", "checkpoint_last.pt")) == 1


def test_resume_continues_with_the_saved_optimizer_state(tmp_path, data_dir):
    root = str(tmp_path)
    _train(root, data_dir, epochs=1)
    last = os.path.join(root, "models", "checkpoint_last.pt")
    saved = torch.load(last, weights_only=True)
    assert _epochs(last) == 1
    wf = workflow(BUNDLE, ["train"], bundle_root=root, dataset_dir=data_dir, **{**TINY[BUNDLE], "epochs": 2})
    wf.resume = True  # not a config key of ConfigWorkflow: override it through the parser
    wf.parser["resume"] = True
    wf.initialize()
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 1  # restored: the next epoch run is epoch 2
    optimizer = wf.parser.get_parsed_content("optimizer").state_dict()
    for key, value in saved["optimizer"]["state"].items():
        torch.testing.assert_close(optimizer["state"][key]["momentum_buffer"], value["momentum_buffer"])
    started = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda engine: started.append(engine.state.epoch))
    wf.run()
    wf.finalize()
    assert started == [2]
    assert _epochs(last) == 2


def test_resume_without_a_checkpoint_names_the_key(tmp_path, data_dir):
    wf = workflow(BUNDLE, ["train"], bundle_root=str(tmp_path), dataset_dir=data_dir, **TINY[BUNDLE])
    wf.parser["resume"] = "true"
    with pytest.raises(Exception) as info:
        wf.initialize()
    assert "'resume'" in error_chain(info.value) and "checkpoint_last.pt" in error_chain(info.value)


@pytest.mark.parametrize(
    "override, key",
    [
        ({"label_mode": "soft"}, "'label_mode'"),
        ({"fold": 5}, "'fold'"),
        ({"qubiq_dataset": "liver"}, "'qubiq_dataset'"),
        ({"variant": "dml3"}, "variant='dml3'"),  # named by the loss component itself
    ],
)
def test_bad_keys_are_named(tmp_path, data_dir, override, key):
    wf = workflow(BUNDLE, ["train"], bundle_root=str(tmp_path), dataset_dir=data_dir, **{**TINY[BUNDLE], **override})
    with pytest.raises(Exception) as info:
        wf.initialize()
    assert key in error_chain(info.value)


def test_missing_dataset_dir_and_checkpoint_from_the_command_line(tmp_path):
    missing = str(tmp_path / "nowhere")
    out = run_cli(BUNDLE, ["train"], bundle_root=str(tmp_path), dataset_dir=missing, epochs=1)
    assert out.returncode != 0
    assert "config key 'dataset_dir'" in out.stderr and missing in out.stderr
    assert "ignite" not in out.stderr.split("config key 'dataset_dir'")[0].splitlines()[-1]
    out = run_cli(BUNDLE, ["inference"], bundle_root=str(tmp_path))
    assert out.returncode != 0
    assert "config key 'checkpoint'" in out.stderr


def test_default_dataset_is_generated_on_first_run(tmp_path):
    root = str(tmp_path)
    wf = workflow(BUNDLE, ["train"], bundle_root=root, epochs=1, **TINY[BUNDLE])
    wf.parser["synthetic_cases"] = 5
    wf.parser["data#synthetic_cases"] = 5
    wf.parser["data#synthetic_size"] = 32
    wf.initialize()
    assert os.path.isdir(os.path.join(root, "data", "synthetic_qubiq", "kidney", "Training", "case05"))
    assert not [f for f in os.listdir(os.path.join(root, "data")) if "partial" in f]


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo")
def test_two_process_ddp_trains_one_epoch(tmp_path, data_dir):
    root = str(tmp_path)
    files = configs(BUNDLE, "train", "multi_gpu_train")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "monai.bundle"]
    cmd += ["run", "--config_file", str(files), "--meta_file", *configs(BUNDLE, "metadata")]
    cmd += ["--bundle_root", root, "--dataset_dir", data_dir, "--epochs", "1", "--image_size", "32"]
    cmd += ["--batch_size", "4", "--progress", "False", "--phi", "BI"]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    out = subprocess.run(
        cmd, cwd=os.path.join(BUNDLES_DIR, BUNDLE), capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(os.listdir(os.path.join(root, "models"))) == ["checkpoint_last.pt", "model.pt"]
    last = os.path.join(root, "models", "checkpoint_last.pt")
    assert _epochs(last) == 1
    state = torch.load(last, weights_only=True)
    assert not any(k.startswith("module.") for k in state["model"])


def test_ckpt_export_traces_the_network(tmp_path, data_dir):
    root = str(tmp_path)
    _train(root, data_dir)
    shutil.copy(os.path.join(root, "models", "model.pt"), tmp_path / "model.pt")
    cmd = [sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(tmp_path / "model.ts")]
    cmd += ["--ckpt_file", str(tmp_path / "model.pt"), "--meta_file", *configs(BUNDLE, "metadata")]
    cmd += ["--config_file", *configs(BUNDLE, "inference"), "--bundle_root", root, "--key_in_ckpt", "model"]
    cmd += ["--use_trace", "True", "--input_shape", "[1, 1, 32, 32]"]
    out = subprocess.run(cmd, cwd=os.path.join(BUNDLES_DIR, BUNDLE), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    net = torch.jit.load(str(tmp_path / "model.ts"))
    assert net(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)
