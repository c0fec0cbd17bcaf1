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
"""The quick mode of wang_qubiq: the directions of Wang et al.'s Tables 2 and 6 that its scale shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_dml.experiments import wang_qubiq


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("wang_qubiq")
    return wang_qubiq.run(quick=True, output_dir=out, seed=0), str(out)


def test_outputs(quick):
    results, out = quick
    saved = json.loads((Path(out) / "wang_qubiq.json").read_text())
    assert saved["table"] == results["table"]
    assert (Path(out) / "wang_qubiq.png").stat().st_size > 0
    settings = wang_qubiq.QUICK
    rows = [r for r in results["table"] if r["sub_dataset"] != "All"]
    assert len(rows) == len(settings.sub_datasets) * len(settings.configs)
    for row in results["table"]:
        assert 0 <= row["dice"] <= 100 and 0 <= row["bdice"] <= 100 and 0 <= row["ece"] <= 100
        if (row["target"], row["loss"]) != ("majority", "dml1"):
            assert all(0 <= row[f"{m}_p"] <= 1 for m in wang_qubiq.METRICS)


def test_soft_labels_calibrate_better_than_majority_votes(quick):
    """Table 2: training on the weighted rater mean gives a lower ECE (vs the majority vote) than the majority vote."""
    table = wang_qubiq.summary(quick[0]["table"])
    assert table[("weighted", "dml1")]["ece"] < table[("majority", "dml1")]["ece"]


def test_dml_beats_sdl_on_soft_labels(quick):
    """Table 6: on the weighted soft labels DML1 reaches a higher BDice and a lower ECE than SDL."""
    table = wang_qubiq.summary(quick[0]["table"])
    assert table[("weighted", "dml1")]["bdice"] > table[("weighted", "sdl")]["bdice"]
    assert table[("weighted", "dml1")]["ece"] < table[("weighted", "sdl")]["ece"]


def test_generated_raters_disagree_as_table1(quick):
    """The generated raters of D5 (brain-tumor task 2) disagree far more than those of every other sub-data set."""
    agreement = quick[0]["agreement"]["D5"]
    assert agreement["table1"] == 68.73
    assert agreement["generated"] < 85.0  # every other sub-data set of Table 1 is above 91
