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

import pytest
from monai.bundle import ConfigParser, verify_metadata
from monai.bundle.properties import InferProperties, TrainProperties
from monai.utils import BundleProperty, BundlePropertyConfig

from tests.bundles.utils import BUNDLES_DIR, SCHEMA, configs

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
