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

from __future__ import annotations

import json

import pytest
import torch

from monai_dml.experiments import run_experiment
from monai_dml.experiments.tilborghs import (
    TilborghsConfig,
    domain_epsilon,
    make_two_structure_set,
    partial_labels,
    run_setting,
)
from monai_dml.losses import DMLoss


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("tilborghs")
    return run_experiment("tilborghs", quick=True, output_dir=out), out


def _row(table, phi, epsilon, labelling="partial"):
    (row,) = [r for r in table if (r["phi"], r["epsilon"], r["labelling"]) == (phi, epsilon, labelling)]
    return row


def test_generator_layout_and_determinism():
    a = make_two_structure_set(10, size=20, type_b_fraction=0.3, seed=3)
    b = make_two_structure_set(10, size=20, type_b_fraction=0.3, seed=3)
    assert a["image"].shape == (10, 1, 20, 20) and a["label"].shape == (10, 2, 20, 20)
    assert int(a["type_b"].sum()) == 3
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    # both structures are present in every case and never overlap
    assert bool((a["label"].sum(dim=(2, 3)) > 0).all())
    assert float((a["label"][:, 0] * a["label"][:, 1]).sum()) == 0.0
    vol = make_two_structure_set(2, size=16, spatial_dims=3, seed=0)
    assert vol["label"].shape == (2, 2, 16, 16, 16)
    with pytest.raises(ValueError, match="spatial_dims"):
        make_two_structure_set(2, spatial_dims=4)


def test_partial_labels_empty_only_structure_2_of_type_b():
    data = make_two_structure_set(8, size=20, type_b_fraction=0.5, seed=1)
    target = partial_labels(data["label"], data["type_b"])
    b = data["type_b"]
    assert float(target[b, 1].sum()) == 0.0
    assert torch.equal(target[~b], data["label"][~b])
    assert torch.equal(target[:, 0], data["label"][:, 0])
    with pytest.raises(ValueError, match="label"):
        partial_labels(data["label"][:, :1], b)


def test_domain_epsilon_is_the_expected_volume_of_one_domain_element():
    labels = torch.zeros(2, 2, 4, 4)
    labels[0, 0, :2, :2] = 1.0  # class 0: 4 voxels in image 0, none in image 1 -> 2 per image
    labels[:, 1, 0, :3] = 1.0  # class 1: 3 voxels in each image -> 3 per image
    assert domain_epsilon(labels, "I", batch_size=4).tolist() == [2.0, 3.0]
    assert domain_epsilon(labels, "BI", batch_size=4).tolist() == [8.0, 12.0]  # B images per element
    assert domain_epsilon(labels, "CI", batch_size=4).tolist() == [2.0, 3.0]  # the loss sums the classes
    assert domain_epsilon(labels, "BCI", batch_size=4).tolist() == [8.0, 12.0]


def test_empty_map_gradient_follows_eq4():
    # Tilborghs et al. Eq. 4 on an empty label map: d DL / d x = eps / (sum x + eps)^2 / |Phi| for every voxel,
    # negligible for the image-wise domain with a small eps; with BI the other image's label makes it O(1 / sum).
    x = torch.full((2, 1, 8), 0.25, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(2, 1, 8, dtype=torch.float64)
    y[0, 0, :4] = 1.0
    eps = 1e-7
    DMLoss(phi="I", smooth_nr=eps, smooth_dr=eps).double()(x, y).backward()
    expected = eps / (8 * 0.25 + eps) ** 2 / 2
    assert torch.allclose(x.grad[1], torch.full_like(x.grad[1], expected))
    x.grad = None
    DMLoss(phi="BI", smooth_nr=eps, smooth_dr=eps).double()(x, y).backward()
    total = 4.0 + 16 * 0.25  # sum of y and x over the batch
    dice = 2 * 4 * 0.25 / total
    assert torch.allclose(x.grad[1], torch.full_like(x.grad[1], dice / total), atol=1e-9)


def test_run_setting_reproduces_with_the_same_seed():
    config = TilborghsConfig(size=16, num_train=8, num_val=4, iterations=3, domains=("BI",), epsilons=("heuristic",))
    first, second = run_setting(config, seed=5), run_setting(config, seed=5)
    assert first == second
    assert [r["labelling"] for r in first] == ["full", "partial"]


def test_quick_writes_results_and_figure(quick):
    results, out = quick
    payload = json.loads((out / "tilborghs.json").read_text())
    assert payload["experiment"] == "tilborghs" and payload["table"] == results["table"]
    assert (out / "tilborghs.png").stat().st_size > 0


def test_quick_image_wise_small_epsilon_ignores_missing_labels(quick):
    table = quick[0]["table"]
    ignore = _row(table, "I", "small")
    for learns_empty in (_row(table, "BI", "small"), _row(table, "I", "heuristic")):
        # the sometimes-missing structure: DL_I with a negligible epsilon still segments it, the others learn empty
        assert ignore["dsc_s2_B"] > learns_empty["dsc_s2_B"]
        assert ignore["dv_s2_B"] > learns_empty["dv_s2_B"]
    # the structure labelled in every training case is learnt whatever the loss
    for row in table:
        assert row["dsc_s1"] > 0.5
