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
"""The bundles' data facts (``QubiqData``, ``CTData`` on ``BundleData``) on tiny generated data sets: key checks,
synthetic data on first use, folds, 2D training slices and teacher files."""

from __future__ import annotations

import os
import pathlib
import re
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from monai_dml.bundle import BundleData, CTData, LabelMode, QubiqData, case_id
from monai_dml.data.synthetic import generate_dataset, generate_qubiq

SIZE, DEPTH = 32, 16
CT_CASES, QUBIQ_CASES = 5, 10
TINY_3D: dict[str, Any] = {"spatial_dims": 3}


@pytest.fixture(scope="module")
def lits_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return generate_dataset("lits", str(tmp_path_factory.mktemp("lits") / "data"), CT_CASES, SIZE, DEPTH)


@pytest.fixture(scope="module")
def kits_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return generate_dataset("kits19", str(tmp_path_factory.mktemp("kits") / "data"), CT_CASES, SIZE, DEPTH)


@pytest.fixture(scope="module")
def qubiq_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return generate_qubiq(str(tmp_path_factory.mktemp("qubiq") / "data"), QUBIQ_CASES, SIZE, datasets=["kidney"])


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory, lits_dir: str) -> str:
    """A teacher's ``<case>_prob.nii.gz`` per LiTS case: 0.8 on the labelled class, 0.1 on the others."""
    out = str(tmp_path_factory.mktemp("teacher"))
    for n in range(CT_CASES):
        (label_path,) = [
            os.path.join(root, f) for root, _, files in os.walk(lits_dir) for f in files if f == f"segmentation-{n}.nii"
        ]
        source = nib.load(label_path)
        label = np.asarray(source.dataobj).astype(np.int64)
        probs = np.full((*label.shape, 3), 0.1, dtype=np.float32)
        np.put_along_axis(probs, label[..., None], 0.8, axis=-1)
        nib.save(nib.Nifti1Image(probs, source.affine), os.path.join(out, f"volume-{n}_prob.nii.gz"))
    return out


def _array(path: str) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


class _ToyData(BundleData):
    """An :py:class:`Experiment` with a fixed data list, to watch ``prepare()`` generate and list."""

    layout = "toy"
    label_modes = ("hard",)

    def __init__(self, *args: Any, folds: tuple[int, ...] = (0, 0, 1, 1, 2), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.folds = folds
        self.generated: list[str] = []
        self.reads = 0

    def generate(self, out_dir: str) -> None:
        self.generated.append(out_dir)
        os.makedirs(out_dir)
        with open(os.path.join(out_dir, "cases.txt"), "w") as f:
            f.write("toy")

    def read_datalist(self) -> list[dict[str, Any]]:
        self.reads += 1
        return [{"case": f"c{i}", "fold": fold} for i, fold in enumerate(self.folds)]


# -- case_id and LabelMode ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, expected",
    [
        ("/a/case_00012/imaging.nii.gz", "case_00012"),
        ("/a/case_00012/segmentation.nii.gz", "case_00012"),
        ("/k/case_00001/aggregated_MAJ_seg.nii.gz", "case_00001"),
        ("/q/kidney/Training/case03/image.nii.gz", "case03"),
        ("/a/volume-3.nii", "volume-3"),
        ("/a/Training Batch 1/segmentation-4.nii", "segmentation-4"),
        ("/msd/imagesTr/liver_7.nii.gz", "liver_7"),
        ("relative/volume-10.nii.gz", "volume-10"),
        (pathlib.Path("/a/case_00002/imaging.nii.gz"), "case_00002"),
    ],
)
def test_case_id(path, expected):
    assert case_id(path) == expected


def test_label_modes():
    assert {m.value for m in LabelMode} == {
        "majority",
        "random",
        "uniform",
        "weighted",
        "staple",
        "ls",
        "hard",
        "kd",
        "raters",
    }
    assert LabelMode("kd") == "kd"
    values = {m.value for m in LabelMode}
    assert set(QubiqData.label_modes) == {"majority", "random", "uniform", "weighted", "staple", "ls", "hard"} <= values
    assert set(CTData.label_modes) == {"hard", "ls", "kd"} <= values


# -- constructor checks ------------------------------------------------------------------------------------------------
_CT_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"fold": 5}, "fold"),
    ({"fold": -1}, "fold"),
    ({"fold": "x"}, "fold"),
    ({"fold": True}, "fold"),
    ({"fold": 2.5}, "fold"),
    ({"fold": 3, "num_folds": 3}, "fold"),
    ({"num_folds": 1}, "num_folds"),
    ({"label_mode": "uniform"}, "label_mode"),
    ({"label_mode": "raters", "layout": "kits21", "spatial_dims": 2}, "label_mode"),
    ({"label_mode": "raters", "layout": "kits19", "spatial_dims": 3}, "label_mode"),
    ({"label_mode": "raters", "layout": "lits", "spatial_dims": 3}, "label_mode"),
    ({"layout": "brats"}, "layout"),
    ({"spatial_dims": 4}, "spatial_dims"),
    ({"spatial_dims": 1}, "spatial_dims"),
    ({"num_classes": 1}, "num_classes"),
    ({"num_classes": 0}, "num_classes"),
    ({"num_classes": 2.5}, "num_classes"),
    ({"label_mode": "kd"}, "teacher_dir"),
    ({"synthetic_depth": 0}, "synthetic_depth"),
    ({"synthetic_cases": 0}, "synthetic_cases"),
]


@pytest.mark.parametrize("kwargs, key", _CT_ERRORS, ids=[f"{k}-{i}" for i, (_, k) in enumerate(_CT_ERRORS)])
def test_ct_experiment_rejects_a_bad_key(tmp_path, kwargs, key):
    with pytest.raises(ValueError, match=re.escape(f"'{key}'")):
        CTData(tmp_path / "data", **kwargs)


_QUBIQ_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"label_mode": "kd"}, "label_mode"),
    ({"label_mode": "raters"}, "label_mode"),
    ({"qubiq_dataset": "liver"}, "qubiq_dataset"),
    ({"qubiq_dataset": "kidney", "qubiq_task": 2}, "qubiq_task"),
    ({"qubiq_dataset": "prostate", "qubiq_task": 3}, "qubiq_task"),
    ({"qubiq_dataset": "brain-tumor", "qubiq_task": 0}, "qubiq_task"),
    ({"fold": 7}, "fold"),
]


@pytest.mark.parametrize("kwargs, key", _QUBIQ_ERRORS, ids=[f"{k}-{i}" for i, (_, k) in enumerate(_QUBIQ_ERRORS)])
def test_qubiq_experiment_rejects_a_bad_key(tmp_path, kwargs, key):
    with pytest.raises(ValueError, match=re.escape(f"'{key}'")):
        QubiqData(tmp_path / "data", **kwargs)


def test_accepted_spellings_are_normalised(tmp_path):
    exp = CTData(tmp_path / "data", layout="KiTS21", spatial_dims=3, label_mode="RATERS", fold="4")
    assert (exp.layout, exp.label_mode, exp.fold) == ("kits21", "raters", 4)
    assert exp.dataset_dir == str(tmp_path / "data") and exp.synthetic_dir is None
    # the rater stack is loaded and resampled beside image and label, with nearest interpolation
    assert (exp.keys, exp.modes) == (["image", "label", "raters"], ["bilinear", "nearest", "nearest"])
    kd = CTData(tmp_path, label_mode="Kd", teacher_dir=tmp_path)
    assert (kd.keys, kd.modes) == (["image", "label", "teacher"], ["bilinear", "nearest", "bilinear"])
    assert QubiqData(tmp_path, label_mode="STAPLE").label_mode == "staple"


def test_channels_and_defaults(tmp_path):
    lits = CTData(tmp_path)
    assert (lits.in_channels, lits.out_channels, lits.label_mode, lits.keys) == (1, 3, "hard", ["image", "label"])
    assert CTData(tmp_path, num_classes=4).out_channels == 4
    kidney = QubiqData(tmp_path, qubiq_dataset="kidney")
    assert (kidney.in_channels, kidney.out_channels, kidney.label_mode) == (1, 1, "uniform")
    assert QubiqData(tmp_path, qubiq_dataset="Brain-Tumor", qubiq_task=3).in_channels == 4
    assert QubiqData(tmp_path, qubiq_dataset="prostate", qubiq_task=2).qubiq_task == 2
    # QUBIQ's hard label is the raters' majority vote, so hard and ls are QUBIQ modes too; kd and raters are not
    assert set(QubiqData.label_modes) == {"majority", "random", "uniform", "weighted", "staple", "ls", "hard"}


def test_base_class_leaves_the_data_set_to_subclasses(tmp_path):
    with pytest.raises(ValueError, match=re.escape("'label_mode'")):
        BundleData(tmp_path)
    toy = _ToyData(tmp_path)
    assert (toy.in_channels, toy.out_channels) == (1, 1)
    with pytest.raises(NotImplementedError):
        BundleData.read_datalist(toy)
    with pytest.raises(NotImplementedError):
        BundleData.generate(toy, str(tmp_path / "x"))


# -- prepare() ---------------------------------------------------------------------------------------------------------
def test_prepare_generates_once_into_the_synthetic_folder(tmp_path):
    data = tmp_path / "synthetic"
    toy = _ToyData(data, synthetic_dir=data)
    assert toy.prepare() is toy
    assert len(toy.generated) == 1
    assert toy.generated[0] != str(data) and ".partial" in toy.generated[0]
    assert os.listdir(tmp_path) == ["synthetic"]  # moved into place, no partial folder left
    assert os.listdir(data) == ["cases.txt"]
    toy.prepare()
    assert len(toy.generated) == 1 and toy.reads == 1  # listed once
    again = _ToyData(data, synthetic_dir=data)
    again.prepare()
    assert again.generated == []  # an existing folder is never regenerated


def test_prepare_compares_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    toy = _ToyData("synthetic", synthetic_dir=str(tmp_path / "synthetic"))
    toy.prepare()
    assert len(toy.generated) == 1 and os.path.isfile(tmp_path / "synthetic" / "cases.txt")


@pytest.mark.parametrize("synthetic", [None, "other"])
def test_prepare_never_generates_a_real_data_set(tmp_path, synthetic):
    data = tmp_path / "real"
    toy = _ToyData(data, synthetic_dir=None if synthetic is None else tmp_path / synthetic)
    with pytest.raises(FileNotFoundError, match=re.escape("'dataset_dir'")):
        toy.prepare()
    assert toy.generated == [] and os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError, match=re.escape("'dataset_dir'")):
        toy.train_cases()


def test_prepare_with_a_trailing_separator(tmp_path):
    data = str(tmp_path / "synthetic") + os.sep
    toy = _ToyData(data, synthetic_dir=data)
    toy.prepare()
    assert os.listdir(tmp_path / "synthetic") == ["cases.txt"]


def test_prepare_writes_the_synthetic_ct_layout(tmp_path):
    data = tmp_path / "synthetic_lits"
    exp = CTData(
        data, synthetic_dir=data, synthetic_cases=CT_CASES, synthetic_size=SIZE, synthetic_depth=DEPTH, **TINY_3D
    ).prepare()
    assert os.listdir(tmp_path) == ["synthetic_lits"]
    assert not [p for p in data.rglob("*") if ".partial" in p.name]
    assert [e["case"] for e in exp.datalist()] == [f"volume-{n}" for n in range(CT_CASES)]
    image = nib.load(exp.datalist()[0]["image"])
    assert image.shape == (SIZE, SIZE, DEPTH)


def test_prepare_writes_only_the_chosen_qubiq_data_set(tmp_path):
    data = tmp_path / "synthetic_qubiq"
    exp = QubiqData(data, synthetic_dir=data, qubiq_dataset="kidney", synthetic_cases=5, synthetic_size=SIZE).prepare()
    assert os.listdir(tmp_path) == ["synthetic_qubiq"]
    assert os.listdir(data) == ["kidney"]
    assert [e["case"] for e in exp.datalist()] == [f"kidney/case{n:02d}" for n in range(1, 6)]


# -- folds -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fold", range(5))
def test_qubiq_folds_partition_the_cases(qubiq_dir, fold):
    exp = QubiqData(qubiq_dir, fold=fold).prepare()
    every = [f"kidney/case{n:02d}" for n in range(1, QUBIQ_CASES + 1)]
    # contiguous 5-fold split of 10 cases (the paper's): fold f validates cases 2f+1 and 2f+2
    val = [f"kidney/case{2 * fold + 1:02d}", f"kidney/case{2 * fold + 2:02d}"]
    assert [e["case"] for e in exp.val_cases()] == val
    assert [e["case"] for e in exp.train_cases()] == [c for c in every if c not in val]
    assert exp.val_data() == exp.val_cases() and exp.train_data() == exp.train_cases()


def test_ct_folds_and_2d_training_slices(lits_dir):
    exp = CTData(lits_dir, fold=3).prepare()
    assert [e["case"] for e in exp.val_cases()] == ["volume-3"]
    assert [e["case"] for e in exp.train_cases()] == ["volume-0", "volume-1", "volume-2", "volume-4"]
    # the training slices: every axial slice (LiTS stores (x, y, z)) of a training volume holding tumour (label 2)
    expected = []
    for entry in exp.train_cases():
        label = _array(entry["label"])
        expected += [(entry["case"], k) for k in range(label.shape[2]) if (label[:, :, k] == 2).any()]
    with pytest.warns(UserWarning, match="volume-1"):  # the generated volume-1 has no tumour
        slices = exp.train_data()
    assert [(e["case"], e["slice"]) for e in slices] == expected
    assert all(e["axis"] == 2 for e in slices) and expected
    exp3 = CTData(lits_dir, fold=3, **TINY_3D).prepare()
    assert exp3.train_data() == exp3.train_cases()


def test_a_fold_without_cases_names_the_key(tmp_path):
    toy = _ToyData(tmp_path, num_folds=4, fold=3).prepare()
    assert len(toy.train_cases()) == 5
    with pytest.raises(ValueError, match=re.escape("'fold'")):
        toy.val_cases()


def test_kd_needs_every_teacher_file(lits_dir, tmp_path):
    exp = CTData(lits_dir, label_mode="kd", teacher_dir=tmp_path, **TINY_3D)
    with pytest.raises(FileNotFoundError, match=re.escape("'teacher_dir'")):
        exp.prepare()
