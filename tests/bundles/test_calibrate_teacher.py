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
"""The teacher-calibration step of the LiTS/KiTS 2D bundles: train a teacher, calibrate it, distil a student."""

from __future__ import annotations

import glob
import json
import os

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_dml.bundle import case_id
from monai_dml.calibration import CalibrationSampler, TemperatureScaling, calibrator_by_name
from monai_dml.data import kits_datalist, lits_datalist
from monai_dml.data.synthetic import generate_dataset
from tests.bundles.utils import TINY, run_cli, workflow

LAYOUTS = {"lits_2d": ("lits", lits_datalist), "kits_2d": ("kits19", kits_datalist)}


def _run(bundle: str, names: list[str], workflow_type: str = "train", **overrides) -> object:
    wf = workflow(bundle, names, workflow_type, **{**TINY[bundle], **overrides})
    wf.initialize()
    wf.run()
    wf.finalize()
    return wf


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions: one thread is faster than two that compete with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


_TEACHERS: dict[str, tuple[str, str]] = {}


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("teachers")

    def get(bundle: str) -> tuple[str, str]:
        """A one-epoch teacher of the bundle on 10 generated cases (trained once): ``(bundle_root, dataset_dir)``."""
        if bundle not in _TEACHERS:
            data = generate_dataset(LAYOUTS[bundle][0], str(root / bundle / "data"), num_cases=10, size=32, depth=16)
            teacher_root = str(root / bundle)
            _run(bundle, ["train"], bundle_root=teacher_root, dataset_dir=data, epochs=1, label_mode="hard")
            _TEACHERS[bundle] = (teacher_root, data)
        return _TEACHERS[bundle]

    yield get
    _TEACHERS.clear()


def _maps(folder: str) -> dict[str, np.ndarray]:
    return {
        os.path.basename(p)[: -len("_prob.nii.gz")]: nib.load(p).get_fdata()
        for p in sorted(glob.glob(os.path.join(folder, "*_prob.nii.gz")))
    }


@pytest.mark.parametrize("bundle", ["lits_2d", pytest.param("kits_2d", marks=pytest.mark.slow)])
def test_temperature_calibrated_teacher_then_student(tmp_path, teacher_dir, bundle):
    """
    The written maps are the uncalibrated teacher's re-tempered at the fitted temperature, for every case, and a
    student trains on them with kd.json.
    """
    teacher_root, data = teacher_dir(bundle)
    # the uncalibrated teacher maps of every case, by the bundle's inference.json
    listing = tmp_path / "all.json"
    images = [e["image"] for e in LAYOUTS[bundle][1](data)]
    listing.write_text(json.dumps([{"image": image} for image in images]))
    plain = str(tmp_path / "plain")
    size = {"image_size": TINY[bundle]["image_size"]}
    _run(
        bundle,
        ["inference"],
        "infer",
        bundle_root=teacher_root,
        dataset_dir=data,
        input_dir=str(listing),
        output_dir=plain,
        **size,
    )
    calibrated_dir = str(tmp_path / "calibrated")
    wf = _run(
        bundle,
        ["train", "calibrate_teacher"],
        bundle_root=teacher_root,
        dataset_dir=data,
        calibrated_dir=calibrated_dir,
    )
    temperature = wf.parser.get_parsed_content("calibrate#calibrator").temperature
    assert temperature is not None and temperature > 0
    before, after = _maps(plain), _maps(calibrated_dir)
    assert sorted(after) == sorted(case_id(image) for image in images)  # every case, named as kd.json reads them
    for case, p in before.items():
        q = after[case]
        assert q.shape == p.shape
        np.testing.assert_allclose(q.sum(-1), 1.0, atol=1e-4)
        # temperature scaling by hand: q_c proportional to p_c ** (1 / T)
        expected = p ** (1.0 / temperature)
        expected /= expected.sum(-1, keepdims=True)
        np.testing.assert_allclose(q, expected, atol=2e-4)
    assert abs(temperature - 1.0) > 1e-3  # the maps changed (a one-epoch teacher is far from calibrated)
    student_root = str(tmp_path / "student")
    _run(bundle, ["train", "kd"], bundle_root=student_root, dataset_dir=data, epochs=1, teacher_dir=calibrated_dir)
    assert os.path.isfile(os.path.join(student_root, "models", "checkpoint_last.pt"))


@pytest.mark.slow
def test_kde_calibration_then_student_from_the_command_line(tmp_path, teacher_dir):
    """The recipe as a user types it: calibrate (KDE) with monai bundle run, then train the student on kd.json."""
    bundle = "lits_2d"
    teacher_root, data = teacher_dir(bundle)
    calibrated_dir = str(tmp_path / "kde")
    out = run_cli(
        bundle,
        ["train", "calibrate_teacher"],
        bundle_root=teacher_root,
        dataset_dir=data,
        calibration_method="kde",
        kde_fit_voxels=200,
        calibrated_dir=calibrated_dir,
        **TINY[bundle],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    maps = _maps(calibrated_dir)
    assert len(maps) == 10
    for q in maps.values():
        np.testing.assert_allclose(q.sum(-1), 1.0, atol=1e-4)
        assert q.min() >= 0 and q.max() <= 1
    student_root = str(tmp_path / "student")
    out = run_cli(
        bundle,
        ["train", "kd"],
        bundle_root=student_root,
        dataset_dir=data,
        epochs=1,
        teacher_dir=calibrated_dir,
        **TINY[bundle],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert os.path.isfile(os.path.join(student_root, "models", "checkpoint_last.pt"))


def test_sampler_fits_the_pooled_sample():
    """The sampler's fit equals a fit on the concatenated cases when every voxel is kept."""
    g = torch.Generator().manual_seed(0)
    cases = [torch.softmax(3 * torch.randn(3, 6, 5, generator=g), dim=0) for _ in range(2)]
    labels = [
        torch.nn.functional.one_hot(torch.multinomial(c.reshape(3, -1).T, 1, generator=g)[:, 0], 3)
        .T.reshape(3, 6, 5)
        .float()
        for c in cases
    ]
    sampler = CalibrationSampler(voxels_per_case=1000)
    for c, y in zip(cases, labels, strict=True):
        sampler.add(c, y)
    fitted = sampler.fit(TemperatureScaling(max_fit_voxels=None))
    pooled = TemperatureScaling(max_fit_voxels=None).fit(
        torch.cat([c.reshape(3, -1) for c in cases], 1)[None], torch.cat([y.reshape(3, -1) for y in labels], 1)[None]
    )
    assert fitted.temperature == pytest.approx(pooled.temperature, rel=1e-6)
    small = CalibrationSampler(voxels_per_case=7)
    small.add(cases[0], labels[0])
    assert small.probs[0].shape == (3, 7)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="method"):
        calibrator_by_name("platt")
    with pytest.raises(ValueError, match="voxels_per_case"):
        CalibrationSampler(voxels_per_case=0)
    with pytest.raises(ValueError, match="same shape"):
        CalibrationSampler().add(torch.zeros(2, 3, 3), torch.zeros(2, 3, 4))
    with pytest.raises(RuntimeError, match="no samples"):
        CalibrationSampler().fit(TemperatureScaling())
