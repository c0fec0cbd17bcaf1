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
"""Offline checks of all five bundles: metadata against the shipped schema, config parsing, MONAI's properties."""

from __future__ import annotations

import json
import os
from unittest import mock

import pytest
import torch
from monai.bundle import ConfigParser, verify_metadata
from monai.bundle.properties import InferProperties, TrainProperties
from monai.handlers import TensorBoardStatsHandler
from monai.utils import BundleProperty, BundlePropertyConfig

from tests.bundles.utils import BUNDLES_DIR, SCHEMA, configs, error_chain

BUNDLES = ["kits_2d", "kits_3d", "lits_2d", "lits_3d", "qubiq_2d"]
FILES = [
    "LICENSE",
    "configs/metadata.json",
    "configs/train.json",
    "configs/evaluate.json",
    "configs/inference.json",
    "configs/multi_gpu_train.json",
    "configs/logging.conf",
    "docs/README.md",
    "docs/data_license.txt",
    "models",
]


def test_every_bundle_folder_is_listed():
    found = sorted(d for d in os.listdir(BUNDLES_DIR) if os.path.isdir(os.path.join(BUNDLES_DIR, d)))
    assert found == BUNDLES


@pytest.mark.parametrize("bundle", BUNDLES)
def test_model_zoo_layout(bundle):
    for name in FILES:
        assert os.path.exists(os.path.join(BUNDLES_DIR, bundle, name)), name


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_is_valid_offline(bundle, tmp_path):
    verify_metadata(meta_file=configs(bundle, "metadata")[0], filepath=SCHEMA)
    with open(configs(bundle, "metadata")[0]) as f:
        meta = json.load(f)
    assert meta["version"] in meta["changelog"]
    assert "monai-dml" in meta["required_packages_version"]


def test_schema_rejects_incomplete_metadata(tmp_path):
    with open(configs("qubiq_2d", "metadata")[0]) as f:
        meta = json.load(f)
    del meta["network_data_format"]
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError):
        verify_metadata(meta_file=str(path), filepath=SCHEMA)


@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("names", [["train"], ["train", "evaluate"], ["train", "multi_gpu_train"], ["inference"]])
def test_configs_parse(bundle, names):
    parser = ConfigParser()
    parser.read_config(configs(bundle, *names))
    parser.parse()
    for key in ("bundle_root", "device", "dataset_dir", "network_def", "initialize", "run"):
        assert key in parser, key


@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("names, properties", [(["train"], TrainProperties), (["inference"], InferProperties)])
def test_monai_required_properties(bundle, names, properties):
    """What ``ConfigWorkflow.check_properties`` requires (it needs an initialized workflow, i.e. data and weights)."""
    parser = ConfigParser()
    parser.read_config(configs(bundle, *names))
    for name, desc in properties.items():
        if desc[BundleProperty.REQUIRED] and desc.get(BundlePropertyConfig.ID):
            assert desc[BundlePropertyConfig.ID] in parser, name


def test_lits_and_kits_differ_only_in_data_facts():
    """The map's promise: diffing the two 2D CT train configs shows the data set, not logic."""
    with open(configs("lits_2d", "train")[0]) as f, open(configs("kits_2d", "train")[0]) as g:
        lits, kits = json.load(f), json.load(g)
    differing = sorted(k for k in set(lits) | set(kits) if lits.get(k) != kits.get(k))
    assert differing == ["hu_window", "layout", "synthetic_dir"]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_train_config_names_its_loss_and_preprocessing_as_components(bundle):
    """The recipe is visible: the loss and every preprocessing step are ``_target_`` components, not helper calls."""
    with open(configs(bundle, "train")[0]) as f:
        config = json.load(f)
    assert config["loss"]["_target_"] == "monai_dml.losses.DMLCELoss"
    assert {"variant", "phi", "smooth_nr", "smooth_dr", "lambda_ce", "lambda_dml"} <= set(config["loss"])
    steps = config["train"]["deterministic_transforms"] + [config["train"]["targets"]]
    assert all(isinstance(s, dict) and "_target_" in s for s in steps)
    assert "experiment" not in json.dumps(config)


def test_command_line_overrides_reach_the_loss_and_a_transform():
    """What ``monai bundle run --loss#lambda_dml 0.5 --train#targets#ls_epsilon 0.2 ...`` sets (same parser path)."""
    parser = ConfigParser()
    parser.read_config(configs("qubiq_2d", "train"))
    parser.update(
        {
            "loss#lambda_dml": 0.5,
            "loss#lambda_ce": 0.5,
            "label_mode": "ls",
            "train#targets#ls_epsilon": 0.2,
            "train#deterministic_transforms#5#mode": "bicubic",
        }
    )
    loss = parser.get_parsed_content("loss")
    assert (loss.lambda_dml, loss.lambda_ce) == (0.5, 0.5)
    targets = parser.get_parsed_content("train#targets")
    # majority vote 1 of a binary label smoothed with epsilon 0.2 over two classes: 1 - 0.2 + 0.2 / 2
    smoothed = targets({"label": torch.ones(1, 2, 2)})["label"]
    assert torch.allclose(torch.as_tensor(smoothed), torch.full((1, 2, 2), 0.9))
    resize = parser.get_parsed_content("train#deterministic_transforms")[5]
    assert resize.mode == ("bicubic",)


@pytest.mark.parametrize("value, disabled", [("yes", False), ("True", False), ("no", True), ("false", True)])
def test_progress_switch_reads_the_usual_spellings(value, disabled):
    parser = ConfigParser()
    parser.read_config(configs("qubiq_2d", "train"))
    parser["progress"] = value
    bar = parser.get_parsed_content("train#handlers#4", instantiate=True)  # the ProgressBar entry, or None if disabled
    assert (bar is None) is disabled


def test_progress_switch_rejects_an_unknown_spelling():
    parser = ConfigParser()
    parser.read_config(configs("qubiq_2d", "train"))
    parser["progress"] = "maybe"
    with pytest.raises(Exception, match="'progress'"):
        parser.get_parsed_content("train#handlers#4")


@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("phi", ["I", "BI"])
def test_epsilon_auto_follows_the_loss_domain(bundle, phi):
    """``epsilon_auto`` is E[sum y] over one element of ``@phi``: a "BI" element pools a whole (patch) batch."""
    parser = ConfigParser()
    parser.read_config(configs(bundle, "train"))
    parser.update(
        {"phi": phi, "epsilon_auto#datalist": [{"label": torch.ones(2, 2, 2)}], "epsilon_auto#transform": None}
    )
    pooled = 1 if phi == "I" else parser["batch_size"] * parser.get("num_samples", 1)
    eps = parser.get_parsed_content("epsilon_auto")
    assert torch.allclose(eps, torch.full_like(eps, 4.0 * pooled))  # 4 foreground voxels per image and class


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_pred_classes_agrees_with_channel_def(bundle):
    """``pred_classes`` names the output channels of ``channel_def`` in order, and the activation the loss uses."""
    with open(configs(bundle, "metadata")[0]) as f:
        meta = json.load(f)
    pred = meta["network_data_format"]["outputs"]["pred"]
    channel_def = pred["channel_def"]
    count, rest = meta["pred_classes"].split(" ", 1)
    names, detail = rest.split(": ", 1)[1].split(" (", 1)
    assert int(count) == pred["num_channels"] == len(channel_def)
    assert names.split(", ") == [channel_def[str(i)] for i in range(len(channel_def))]
    assert rest.startswith("channel: " if int(count) == 1 else "channels: ")
    with open(configs(bundle, "train")[0]) as f:
        loss = json.load(f)["loss"]
    activation = "sigmoid" if loss.get("sigmoid") else "softmax"
    assert detail.startswith(f"logits; {activation} gives the probabilit"), detail


@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("rank", [0, 1])
def test_only_rank_zero_creates_tensorboard_writers(bundle, rank, tmp_path):
    """Under DDP a TensorBoard handler on rank > 0 is disabled (never built, so no events file is written)."""
    parser = ConfigParser()
    parser.read_config(configs(bundle, "train", "multi_gpu_train"))
    parser["output_dir"] = str(tmp_path)
    with mock.patch("torch.distributed.get_rank", return_value=rank):
        handlers = [parser.get_parsed_content(key) for key in ("train#handlers#3", "validate#handlers#1")]
    for handler in handlers:
        if rank == 0:
            assert isinstance(handler, TensorBoardStatsHandler)
            handler.close()
        else:
            assert handler is None
    assert bool(os.listdir(tmp_path)) == (rank == 0)  # the writer's events file, on rank 0 only


@pytest.fixture(scope="module")
def prostate_with_missing_rater(tmp_path_factory):
    """A synthetic QUBIQ prostate set of 6 cases whose last one lacks its last rater file (as the real set)."""
    from monai_dml.data.synthetic import generate_qubiq

    return generate_qubiq(str(tmp_path_factory.mktemp("qubiq")), num_cases=6, size=16, datasets=["prostate"])


@pytest.mark.parametrize("policy, expected", [("skip", 5), ("keep", 6), ("error", None), ("drop", None)])
def test_missing_raters_is_a_bundle_key(prostate_with_missing_rater, policy, expected):
    """``--missing_raters skip|keep|error`` decides what becomes of a case missing a rater file."""
    parser = ConfigParser()
    parser.read_config(configs("qubiq_2d", "train"))
    parser.update({"dataset_dir": prostate_with_missing_rater, "qubiq_dataset": "prostate", "missing_raters": policy})
    if policy == "drop":
        with pytest.raises(Exception) as info:
            parser.get_parsed_content("data")
        assert "config key 'missing_raters'" in error_chain(info.value)
        return
    data = parser.get_parsed_content("data")
    if expected is None:
        with pytest.raises(ValueError, match="case06"):
            data.datalist()
        return
    with pytest.warns(UserWarning, match="case06"):
        cases = data.datalist()
    assert len(cases) == expected
    assert sorted(len(c["raters"]) for c in cases)[0] == (5 if policy == "keep" else 6)


@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("names", [["train"], ["train", "multi_gpu_train"]])
def test_resume_without_checkpoint_fails_before_anything_is_built(bundle, names, tmp_path):
    # the resume switch is checked before the data set is prepared and before the trainer (and its TensorBoard
    # writer) exist, so a wrong --resume writes nothing into the bundle folder
    parser = ConfigParser()
    parser.read_config(configs(bundle, *names))
    parser.update({"bundle_root": str(tmp_path / "run"), "resume": True})
    steps = parser.get("initialize")
    check = next(i for i, s in enumerate(steps) if s.startswith("$dml.resume_from("))
    assert check < steps.index("$@data.prepare()")
    if names == ["train"]:
        with pytest.raises(RuntimeError) as raised:  # MONAI wraps the error of a config expression
            for i in range(check + 1):  # the initialize steps in order, as the workflow runs them
                parser.get_parsed_content(f"initialize#{i}")
        assert "FileNotFoundError: config key 'resume'" in error_chain(raised.value)
        assert "checkpoint_last.pt" in error_chain(raised.value)
        assert not (tmp_path / "run").exists()
