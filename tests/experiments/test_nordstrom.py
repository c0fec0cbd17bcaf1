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

import itertools
import json

import numpy as np
import pytest
import torch

from monai_dml.experiments import run_experiment
from monai_dml.experiments.nordstrom import (
    dice_optimum,
    optimal_volume_range,
    optimise_logits,
    sharp_volume_example,
    synthetic_soft_label,
)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("nordstrom")
    return run_experiment("nordstrom", quick=True, output_dir=out), out


def _rows(results, loss, step):
    return {row["rho"]: row for row in results["table"] if row["loss"] == loss and row["step"] == step}


def test_theorem1_optimum_is_the_exhaustive_dice_maximiser():
    # all 2^10 segmentations of a 10-voxel soft label: the best Dice 2<s, m> / (|s| + |m|) and its maximiser
    rng = np.random.default_rng(3)
    for _ in range(5):
        m = rng.uniform(size=10)
        best, best_s = -1.0, None
        for bits in itertools.product((0.0, 1.0), repeat=10):
            s = np.array(bits)
            dice = 2 * (s * m).sum() / (s.sum() + m.sum())
            if dice > best:
                best, best_s = dice, s
        s, sup = dice_optimum(m)
        assert sup == pytest.approx(best, abs=1e-12)
        np.testing.assert_array_equal(s, best_s)
        assert s.sum() >= (m >= 0.5).sum()  # eq. (13): never smaller than the 1/2-threshold of m


def test_theorem2_sharp_example():
    # m = 1 on v^2 N voxels and v / (1 + v) elsewhere: D* = 2 v / (1 + v), optimal volumes span [v^2, 1]
    m = sharp_volume_example(1.0 / 3.0, 900)
    assert m.mean() == pytest.approx(1.0 / 3.0)
    assert dice_optimum(m)[1] == pytest.approx(0.5)
    low, high = optimal_volume_range(m)
    assert low == pytest.approx(1.0 / 9.0)
    assert high == pytest.approx(1.0)


def test_soft_label_generator():
    rng = np.random.default_rng(0)
    ball = synthetic_soft_label(0.0, rng, deform=0.0)
    assert set(np.unique(ball)) == {0.0, 1.0}
    assert ball.mean() == pytest.approx(np.pi * 0.2**2, rel=0.01)
    blurred = synthetic_soft_label(0.05, rng, deform=0.0)
    assert blurred.sum() == pytest.approx(ball.sum(), rel=1e-3)  # the blur keeps the mass (far from the border)
    assert ((blurred > 0.01) & (blurred < 0.99)).mean() > 0.05
    deformed = synthetic_soft_label(0.05, rng)
    assert np.abs(deformed - blurred).mean() > 0.01
    assert deformed.min() >= 0.0 and deformed.max() <= 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="m must not be all zero"):
        dice_optimum(np.zeros(4))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        dice_optimum(np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="shape"):
        optimise_logits(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5), "sdl", 1.0)
    with pytest.raises(ValueError, match="step"):
        optimise_logits(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), "sdl", 0.0)
    with pytest.raises(ValueError, match="rho"):
        synthetic_soft_label(-0.1, np.random.default_rng(0))


def test_quick_sdl_converges_to_theorem1_optimum(quick):
    results, out = quick
    assert (out / "nordstrom.png").stat().st_size > 0
    assert json.loads((out / "nordstrom.json").read_text())["experiment"] == "nordstrom"
    sdl = _rows(results, "sdl", "10N")
    assert set(sdl) == {0.01, 0.05, 0.09}
    for row in sdl.values():
        # F_1 ~ N(0, 1): sigmoid(F_1) is symmetric about 1/2, so both distances to a 0/1 map are 1/2 in expectation
        assert row["e0_1"] == pytest.approx(0.5, abs=0.01)
        assert row["e1_1"] == pytest.approx(0.5, abs=0.01)
        assert row["e1_200"] < 0.05 and row["e0_200"] < 0.05
        assert row["e0_200"] < row["e0_20"] < row["e0_10"]
        # SDL's limit is the thresholded s, not the soft label m
        assert row["d_200"] > 5 * row["e0_200"]


def test_quick_dml_ends_closer_to_the_soft_label(quick):
    results, _ = quick
    sdl = _rows(results, "sdl", "10N")
    for variant in ("dml1", "dml2"):
        for rho, row in _rows(results, variant, "1N").items():
            assert row["d_200"] < sdl[rho]["d_200"]
            assert row["d_200"] < row["d_20"]


def test_quick_volumes_within_theorem2(quick):
    results, _ = quick
    assert len(results["volumes"]) == 3
    for row in results["volumes"]:
        assert row["sdl_within_bounds"] == 1.0
        assert row["bound_low"] <= row["volume_sdl"] <= 1.0
        assert row["optimum_above_half"] == 1.0
        # the package's Dice of the 0/1 map s against m is D_m(s) = D* (Definition 1: min(s, m) = s m for 0/1 s)
        assert row["dice_of_optimum"] == pytest.approx(row["sup_dice"], abs=1e-5)
        # Theorem 1 (part 2): no soft segmentation beats the best hard one
        assert row["max_soft_dice_gain"] <= 1e-5
    sharp = results["theorem2_sharpness"]
    assert sharp["optimal_volume_inf"] == pytest.approx(sharp["bound_low"])
    assert sharp["optimal_volume_sup"] == pytest.approx(1.0)
