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
"""The bare loop of ``benchmarks/bench_overhead.py`` trains what ``qubiq_2d/configs/train.json`` trains."""

from __future__ import annotations

import os
import sys

import torch
from monai.bundle import ConfigParser

from tests.bundles.utils import REPO, configs

sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import bench_overhead


def _parser(data_dir: str, image_size: int) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(configs("qubiq_2d", "train"))
    parser.update({"dataset_dir": data_dir, "synthetic_dir": data_dir, "image_size": image_size})
    return parser


def test_bare_side_matches_the_config(tmp_path):
    data_dir = str(tmp_path / "data")
    parser = _parser(data_dir, 32)
    data = parser.get_parsed_content("data")
    data.prepare()  # generates the synthetic kidney set, as the bundle's first initialize step does
    config = bench_overhead.train_config()
    network, loss, optimizer, scheduler = bench_overhead.bare_components(config, epochs=7)

    # the same cases, preprocessed to the same tensors, in the same order
    chain = parser.get_parsed_content("train#preprocessing")
    items = [chain(dict(e)) for e in data.train_data()]
    images, labels = bench_overhead.bare_cases(data_dir, 32, config["label_mode"])
    assert images.shape == (len(items), 1, 32, 32)
    torch.testing.assert_close(images, torch.stack([torch.as_tensor(i["image"]).float() for i in items]))
    torch.testing.assert_close(labels, torch.stack([torch.as_tensor(i["label"]).float() for i in items]))

    # the same loss: equal values on one soft-label pair
    logits = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    target = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss(logits, target), parser.get_parsed_content("loss")(logits, target))

    # the same network and optimizer settings
    config_net = parser.get_parsed_content("network_def")
    assert type(network) is type(config_net)
    assert [p.shape for p in network.parameters()] == [p.shape for p in config_net.parameters()]
    config_opt = parser.get_parsed_content("optimizer")
    for key in ("lr", "momentum", "weight_decay"):
        assert optimizer.param_groups[0][key] == config_opt.param_groups[0][key]
    assert scheduler.total_iters == 7 and scheduler.power == parser.get_parsed_content("poly_power")
