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
"""The quick mode of wang_kd: every student trains, and calibration lowers the teacher's calibration error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_dml.experiments import wang_kd


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("wang_kd")
    return wang_kd.run(quick=True, output_dir=out, seed=0), out


def test_outputs(quick):
    results, out = quick
    assert json.loads((out / "wang_kd.json").read_text())["table"] == results["table"]
    assert (out / "wang_kd.png").stat().st_size > 0
    for layout in wang_kd.QUICK.layouts:
        models = [r["model"] for r in results["table"] if r["layout"] == layout]
        assert models == ["teacher", *wang_kd.STUDENTS]
    for row in results["table"]:
        assert 0 <= row["dice"] <= 100 and 0 <= row["ece"] <= 100


def test_calibration_lowers_the_teacher_calibration_error(quick):
    """Temperature scaling and the KDE calibrator each lower the teacher's ECE on the fold they were fitted on."""
    for layout in wang_kd.QUICK.layouts:
        rows = {r["model"]: r for r in quick[0]["table"] if r["layout"] == layout}
        assert rows["kd"]["teacher_ece"] == rows["teacher"]["ece"]  # the uncalibrated teacher's own maps
        assert rows["kd_temperature"]["teacher_ece"] < rows["kd"]["teacher_ece"]
        assert rows["kd_kde"]["teacher_ece"] < rows["kd"]["teacher_ece"]
        assert rows["hard"]["gain"] == 0.0
        # Table 7's ablation students distil from the uncalibrated teacher's maps
        assert rows["kd_ce"]["teacher_ece"] == rows["kd_dml"]["teacher_ece"] == rows["teacher"]["ece"]
