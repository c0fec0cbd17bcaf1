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
"""``monai_dml.bundle.experiment`` on tiny generated data sets: key checks, synthetic data on first use, folds, the
loss and its data-driven epsilon, and the post-processing chains."""

from __future__ import annotations

import math
import os
import pathlib
import re
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.inferers import SimpleInferer, SliceInferer, SlidingWindowInferer

from monai_dml.bundle import CTExperiment, Experiment, LabelMode, PackedKDLoss, QubiqExperiment, case_id
from monai_dml.data.synthetic import generate_dataset, generate_qubiq
from monai_dml.losses import DiceDomain, DMLCELoss, DMLVariant, KDLoss

SIZE, DEPTH = 32, 16
CT_CASES, QUBIQ_CASES = 5, 10
TINY_3D: dict[str, Any] = {"spatial_dims": 3, "patch_size": (16, 16, 16)}


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


class _ToyExperiment(Experiment):
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
    assert set(QubiqExperiment.label_modes) == {"majority", "random", "uniform", "weighted", "staple", "ls"} <= values
    assert set(CTExperiment.label_modes) == {"hard", "ls", "kd"} <= values


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
    ({"variant": "dml3"}, "variant"),
    ({"phi": "XI"}, "phi"),
    ({"epsilon": -1.0}, "epsilon"),
    ({"epsilon": float("nan")}, "epsilon"),
    ({"epsilon": "big"}, "epsilon"),
    ({"ls_epsilon": 1.5}, "ls_epsilon"),
    ({"ls_epsilon": -0.1}, "ls_epsilon"),
    ({"ls_method": "gaussian"}, "ls_method"),
    ({"sync_batch": "maybe"}, "sync_batch"),
    ({"include_background": "perhaps"}, "include_background"),
    ({"layout": "brats"}, "layout"),
    ({"spatial_dims": 4}, "spatial_dims"),
    ({"spatial_dims": 1}, "spatial_dims"),
    ({"num_classes": 1}, "num_classes"),
    ({"num_classes": 0}, "num_classes"),
    ({"num_classes": 2.5}, "num_classes"),
    ({"hu_window": (100, -100)}, "hu_window"),
    ({"hu_window": (50, 50)}, "hu_window"),
    ({"hu_window": (0,)}, "hu_window"),
    ({"image_size": 0}, "image_size"),
    ({"image_size": True}, "image_size"),
    ({"patch_size": (32, 32)}, "patch_size"),
    ({"patch_size": (32, 0, 32)}, "patch_size"),
    ({"num_samples": 0}, "num_samples"),
    ({"label_mode": "kd"}, "teacher_dir"),
    ({"synthetic_depth": 0}, "synthetic_depth"),
    ({"sw_batch_size": 0}, "sw_batch_size"),
]


@pytest.mark.parametrize("kwargs, key", _CT_ERRORS, ids=[f"{k}-{i}" for i, (_, k) in enumerate(_CT_ERRORS)])
def test_ct_experiment_rejects_a_bad_key(tmp_path, kwargs, key):
    with pytest.raises(ValueError, match=re.escape(f"'{key}'")):
        CTExperiment(tmp_path / "data", **kwargs)


_QUBIQ_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"label_mode": "hard"}, "label_mode"),
    ({"label_mode": "kd"}, "label_mode"),
    ({"qubiq_dataset": "liver"}, "qubiq_dataset"),
    ({"qubiq_dataset": "kidney", "qubiq_task": 2}, "qubiq_task"),
    ({"qubiq_dataset": "prostate", "qubiq_task": 3}, "qubiq_task"),
    ({"qubiq_dataset": "brain-tumor", "qubiq_task": 0}, "qubiq_task"),
    ({"image_size": -1}, "image_size"),
    ({"fold": 7}, "fold"),
    ({"epsilon": -0.5}, "epsilon"),
]


@pytest.mark.parametrize("kwargs, key", _QUBIQ_ERRORS, ids=[f"{k}-{i}" for i, (_, k) in enumerate(_QUBIQ_ERRORS)])
def test_qubiq_experiment_rejects_a_bad_key(tmp_path, kwargs, key):
    with pytest.raises(ValueError, match=re.escape(f"'{key}'")):
        QubiqExperiment(tmp_path / "data", **kwargs)


def test_accepted_spellings_are_normalised(tmp_path):
    exp = CTExperiment(
        tmp_path / "data",
        layout="KiTS21",
        spatial_dims=3,
        label_mode="RATERS",
        variant="DML2",
        phi="bci",
        epsilon=0,
        ls_method="SVLS",
        sync_batch="yes",
        include_background="0",
        fold="4",
    )
    assert (exp.layout, exp.label_mode, exp.variant, exp.phi, exp.ls_method) == (
        "kits21",
        "raters",
        "dml2",
        "BCI",
        "svls",
    )
    assert exp.sync_batch is True and exp.include_background is False and exp.fold == 4
    assert exp.epsilon_value() == 0.0
    assert exp.dataset_dir == str(tmp_path / "data") and exp.synthetic_dir is None


def test_channels_and_defaults(tmp_path):
    lits = CTExperiment(tmp_path)
    assert (lits.in_channels, lits.out_channels, lits.binary) == (1, 3, False)
    assert lits.hu_window == (-60.0, 140.0)  # the paper's LiTS window
    assert CTExperiment(tmp_path, layout="kits19").hu_window == (-200.0, 300.0)  # the paper's KiTS window
    assert CTExperiment(tmp_path, hu_window=[-100, 200]).hu_window == (-100.0, 200.0)
    assert CTExperiment(tmp_path, num_classes=4).out_channels == 4
    kidney = QubiqExperiment(tmp_path, qubiq_dataset="kidney")
    assert (kidney.in_channels, kidney.out_channels, kidney.binary, kidney.label_mode) == (1, 1, True, "uniform")
    assert QubiqExperiment(tmp_path, qubiq_dataset="Brain-Tumor", qubiq_task=3).in_channels == 4
    assert QubiqExperiment(tmp_path, qubiq_dataset="prostate", qubiq_task=2).qubiq_task == 2


def test_base_experiment_leaves_the_data_set_to_subclasses(tmp_path):
    with pytest.raises(ValueError, match=re.escape("'label_mode'")):
        Experiment(tmp_path)
    toy = _ToyExperiment(tmp_path)
    assert (toy.in_channels, toy.out_channels, toy.binary) == (1, 1, True)
    for method in (Experiment.read_datalist, Experiment.train_transforms, Experiment.val_transforms):
        with pytest.raises(NotImplementedError):
            method(toy)
    with pytest.raises(NotImplementedError):
        Experiment.generate(toy, str(tmp_path / "x"))
    assert isinstance(toy.train_inferer(), SimpleInferer) and isinstance(toy.val_inferer(), SimpleInferer)


# -- prepare() ---------------------------------------------------------------------------------------------------------
def test_prepare_generates_once_into_the_synthetic_folder(tmp_path):
    data = tmp_path / "synthetic"
    toy = _ToyExperiment(data, synthetic_dir=data)
    assert toy.prepare() is toy
    assert len(toy.generated) == 1
    assert toy.generated[0] != str(data) and ".partial" in toy.generated[0]
    assert os.listdir(tmp_path) == ["synthetic"]  # moved into place, no partial folder left
    assert os.listdir(data) == ["cases.txt"]
    toy.prepare()
    assert len(toy.generated) == 1 and toy.reads == 1  # listed once
    again = _ToyExperiment(data, synthetic_dir=data)
    again.prepare()
    assert again.generated == []  # an existing folder is never regenerated


def test_prepare_compares_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    toy = _ToyExperiment("synthetic", synthetic_dir=str(tmp_path / "synthetic"))
    toy.prepare()
    assert len(toy.generated) == 1 and os.path.isfile(tmp_path / "synthetic" / "cases.txt")


@pytest.mark.parametrize("synthetic", [None, "other"])
def test_prepare_never_generates_a_real_data_set(tmp_path, synthetic):
    data = tmp_path / "real"
    toy = _ToyExperiment(data, synthetic_dir=None if synthetic is None else tmp_path / synthetic)
    with pytest.raises(FileNotFoundError, match=re.escape("'dataset_dir'")):
        toy.prepare()
    assert toy.generated == [] and os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError, match=re.escape("'dataset_dir'")):
        toy.train_cases()


def test_prepare_with_a_trailing_separator(tmp_path):
    data = str(tmp_path / "synthetic") + os.sep
    toy = _ToyExperiment(data, synthetic_dir=data)
    toy.prepare()
    assert os.listdir(tmp_path / "synthetic") == ["cases.txt"]


def test_prepare_writes_the_synthetic_ct_layout(tmp_path):
    data = tmp_path / "synthetic_lits"
    exp = CTExperiment(
        data, synthetic_dir=data, synthetic_cases=CT_CASES, synthetic_size=SIZE, synthetic_depth=DEPTH, **TINY_3D
    ).prepare()
    assert os.listdir(tmp_path) == ["synthetic_lits"]
    assert not [p for p in data.rglob("*") if ".partial" in p.name]
    assert [e["case"] for e in exp.datalist()] == [f"volume-{n}" for n in range(CT_CASES)]
    image = nib.load(exp.datalist()[0]["image"])
    assert image.shape == (SIZE, SIZE, DEPTH)


def test_prepare_writes_only_the_chosen_qubiq_data_set(tmp_path):
    data = tmp_path / "synthetic_qubiq"
    exp = QubiqExperiment(
        data, synthetic_dir=data, qubiq_dataset="kidney", synthetic_cases=5, synthetic_size=SIZE, image_size=SIZE
    ).prepare()
    assert os.listdir(tmp_path) == ["synthetic_qubiq"]
    assert os.listdir(data) == ["kidney"]
    assert [e["case"] for e in exp.datalist()] == [f"kidney/case{n:02d}" for n in range(1, 6)]


# -- folds -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fold", range(5))
def test_qubiq_folds_partition_the_cases(qubiq_dir, fold):
    exp = QubiqExperiment(qubiq_dir, fold=fold, image_size=SIZE).prepare()
    every = [f"kidney/case{n:02d}" for n in range(1, QUBIQ_CASES + 1)]
    # contiguous 5-fold split of 10 cases (the paper's): fold f validates cases 2f+1 and 2f+2
    val = [f"kidney/case{2 * fold + 1:02d}", f"kidney/case{2 * fold + 2:02d}"]
    assert [e["case"] for e in exp.val_cases()] == val
    assert [e["case"] for e in exp.train_cases()] == [c for c in every if c not in val]
    assert exp.val_data() == exp.val_cases() and exp.train_data() == exp.train_cases()


def test_ct_folds_and_2d_training_slices(lits_dir):
    exp = CTExperiment(lits_dir, fold=3, image_size=SIZE).prepare()
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
    exp3 = CTExperiment(lits_dir, fold=3, **TINY_3D).prepare()
    assert exp3.train_data() == exp3.train_cases()


def test_a_fold_without_cases_names_the_key(tmp_path):
    toy = _ToyExperiment(tmp_path, num_folds=4, fold=3).prepare()
    assert len(toy.train_cases()) == 5
    with pytest.raises(ValueError, match=re.escape("'fold'")):
        toy.val_cases()


# -- epsilon and loss --------------------------------------------------------------------------------------------------
def test_auto_epsilon_qubiq_uniform_is_the_mean_rater_volume(qubiq_dir):
    exp = QubiqExperiment(qubiq_dir, fold=1, image_size=SIZE, epsilon="auto", label_mode="uniform").prepare()
    # the uniform fusion is the rater mean, so its sum is the mean of the raters' foreground pixel counts
    volumes = [np.mean([(_array(r) > 0).sum() for r in e["raters"]]) for e in exp.train_cases()]
    eps = exp.epsilon_value()
    assert tuple(eps.shape) == (1,)
    np.testing.assert_allclose(np.asarray(eps), [np.mean(volumes)], rtol=1e-6)


def test_auto_epsilon_qubiq_majority(qubiq_dir):
    exp = QubiqExperiment(qubiq_dir, fold=4, image_size=SIZE, epsilon="auto", label_mode="majority").prepare()
    # three raters: the majority vote is foreground where at least two of them are
    volumes = [(np.sum([_array(r) > 0 for r in e["raters"]], axis=0) >= 2).sum() for e in exp.train_cases()]
    np.testing.assert_allclose(np.asarray(exp.epsilon_value()), [np.mean(volumes)], rtol=1e-6)


def test_auto_epsilon_ct_3d_is_the_mean_voxel_count_per_class(lits_dir):
    exp = CTExperiment(lits_dir, fold=0, epsilon="auto", **TINY_3D).prepare()
    counts = [np.bincount(_array(e["label"]).astype(np.int64).ravel(), minlength=3) for e in exp.train_cases()]
    np.testing.assert_allclose(np.asarray(exp.epsilon_value()), np.mean(counts, axis=0), rtol=1e-6)


def test_auto_epsilon_ct_2d_is_the_mean_over_training_slices(lits_dir):
    exp = CTExperiment(lits_dir, fold=2, epsilon="auto", image_size=SIZE).prepare()
    counts = []
    for entry in exp.train_cases():
        label = _array(entry["label"]).astype(np.int64)
        counts += [np.bincount(label[:, :, k].ravel(), minlength=3) for k in range(label.shape[2])]
    tumour_slices = [c for c in counts if c[2] > 0]
    with pytest.warns(UserWarning, match="volume-1"):  # the generated volume-1 has no tumour
        eps = exp.epsilon_value()
    np.testing.assert_allclose(np.asarray(eps), np.mean(tumour_slices, axis=0), rtol=1e-6)


def test_auto_epsilon_kd_counts_the_label_not_the_teacher(lits_dir, teacher_dir):
    exp = CTExperiment(lits_dir, fold=0, epsilon="auto", label_mode="kd", teacher_dir=teacher_dir, **TINY_3D)
    exp.prepare()
    entry = exp.train_cases()[0]
    assert entry["teacher"] == os.path.join(teacher_dir, f"{entry['case']}_prob.nii.gz")
    target = exp.train_transforms(crop=False)(entry)["label"]
    assert target.shape[0] == 6  # the one-hot label, then the teacher
    torch.testing.assert_close(target[3:].sum(0), torch.ones(target.shape[1:]))
    counts = [np.bincount(_array(e["label"]).astype(np.int64).ravel(), minlength=3) for e in exp.train_cases()]
    np.testing.assert_allclose(np.asarray(exp.epsilon_value()), np.mean(counts, axis=0), rtol=1e-6)


def test_kd_needs_every_teacher_file(lits_dir, tmp_path):
    exp = CTExperiment(lits_dir, label_mode="kd", teacher_dir=tmp_path, **TINY_3D)
    with pytest.raises(FileNotFoundError, match=re.escape("'teacher_dir'")):
        exp.prepare()


def test_auto_epsilon_without_background(lits_dir):
    exp = CTExperiment(lits_dir, fold=0, epsilon="auto", include_background=False, **TINY_3D).prepare()
    counts = np.mean(
        [np.bincount(_array(e["label"]).astype(np.int64).ravel(), minlength=3) for e in exp.train_cases()], 0
    )
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 4, 4, 4, generator=g)
    y = torch.nn.functional.one_hot(torch.randint(0, 3, (1, 4, 4, 4), generator=g), 3).permute(0, 4, 1, 2, 3).float()
    eps = torch.as_tensor(counts[1:], dtype=torch.float32)
    expected = DMLCELoss(softmax=True, include_background=False, smooth_nr=eps, smooth_dr=eps)(x, y)
    torch.testing.assert_close(exp.loss()(x, y), expected)


def test_auto_epsilon_in_capitals(lits_dir):
    exp = CTExperiment(lits_dir, fold=0, epsilon="Auto", **TINY_3D).prepare()
    counts = [np.bincount(_array(e["label"]).astype(np.int64).ravel(), minlength=3) for e in exp.train_cases()]
    np.testing.assert_allclose(np.asarray(exp.epsilon_value()), np.mean(counts, axis=0), rtol=1e-6)


def test_loss_ct_is_softmax_dml_ce(tmp_path):
    exp = CTExperiment(tmp_path, variant="dml2", phi="bi", epsilon=1e-3, include_background=False)
    loss = exp.loss()
    assert type(loss) is DMLCELoss
    assert (loss.lambda_ce, loss.lambda_dml) == (0.25, 0.75)  # the paper's 0.25 CE + 0.75 DML
    assert loss.dml.softmax is True and loss.dml.sigmoid is False
    assert loss.dml.variant == DMLVariant.DML2 and loss.dml.phi == DiceDomain.BI
    assert loss.dml.include_background is False
    torch.testing.assert_close(loss.dml.smooth_nr, torch.tensor(1e-3))
    torch.testing.assert_close(loss.dml.smooth_dr, torch.tensor(1e-3))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 5, generator=g)
    y = torch.softmax(torch.randn(2, 3, 5, 5, generator=g), dim=1)
    reference = DMLCELoss(
        softmax=True, variant="dml2", phi="BI", smooth_nr=1e-3, smooth_dr=1e-3, include_background=False
    )
    torch.testing.assert_close(loss(x, y), reference(x, y))


def test_loss_qubiq_is_sigmoid_dml_ce(tmp_path):
    loss = QubiqExperiment(tmp_path).loss()
    assert type(loss) is DMLCELoss
    assert loss.dml.sigmoid is True and loss.dml.softmax is False
    assert loss.dml.variant == DMLVariant.DML1 and loss.dml.phi == DiceDomain.I
    torch.testing.assert_close(loss.dml.smooth_nr, torch.tensor(1e-5))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 6, 6, generator=g)
    y = torch.rand(2, 1, 6, 6, generator=g)
    torch.testing.assert_close(loss(x, y), DMLCELoss(sigmoid=True)(x, y))


def test_loss_kd_is_packed(tmp_path):
    loss = CTExperiment(tmp_path, label_mode="kd", teacher_dir=tmp_path, kd_temperature=2.0).loss()
    assert isinstance(loss, PackedKDLoss)
    assert loss.kd.temperature == 2.0
    assert loss.kd.label_loss.dml.softmax is True and loss.kd.label_loss.dml.sigmoid is False
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 3, 4, 4, generator=g)
    onehot = torch.nn.functional.one_hot(torch.randint(0, 3, (1, 4, 4), generator=g), 3).permute(0, 3, 1, 2).float()
    teacher = torch.softmax(torch.randn(1, 3, 4, 4, generator=g), dim=1)
    expected = KDLoss(softmax=True, temperature=2.0)(x, onehot, teacher)
    torch.testing.assert_close(loss(x, torch.cat([onehot, teacher], dim=1)), expected)


# -- inferers and post-processing --------------------------------------------------------------------------------------
def test_inferers(tmp_path):
    two = CTExperiment(tmp_path, image_size=64, sw_batch_size=3).val_inferer()
    assert isinstance(two, SliceInferer) and two.spatial_dim == 2 and tuple(two.roi_size) == (64, 64)
    assert two.sw_batch_size == 3
    three = CTExperiment(tmp_path, spatial_dims=3, patch_size=(32, 48, 16)).val_inferer()
    assert isinstance(three, SlidingWindowInferer) and tuple(three.roi_size) == (32, 48, 16)
    assert isinstance(QubiqExperiment(tmp_path).val_inferer(), SimpleInferer)


def test_val_postprocessing_binary(tmp_path):
    # logits log(4) and -log(3): sigmoid 4/5 and 1/4
    pred = torch.tensor([[[math.log(4.0), -math.log(3.0)]]])
    soft = torch.tensor([[[0.5, 0.25]]])
    out = QubiqExperiment(tmp_path).val_postprocessing()({"pred": pred, "label_soft": soft})
    torch.testing.assert_close(torch.as_tensor(out["pred"]), torch.tensor([[[0.8, 0.25]]]))
    torch.testing.assert_close(torch.as_tensor(out["pred_hard"]), torch.tensor([[[1.0, 0.0]]]))
    torch.testing.assert_close(torch.as_tensor(out["label_mean"]), soft)


def test_val_postprocessing_softmax(tmp_path):
    probs = torch.tensor([[[0.2, 0.6]], [[0.3, 0.3]], [[0.5, 0.1]]])  # (C=3, 1, 2)
    out = CTExperiment(tmp_path).val_postprocessing()({"pred": torch.log(probs)})
    torch.testing.assert_close(torch.as_tensor(out["pred"]), probs)
    torch.testing.assert_close(
        torch.as_tensor(out["pred_hard"]), torch.tensor([[[0.0, 1.0]], [[0.0, 0.0]], [[1.0, 0.0]]])
    )


@pytest.mark.parametrize("layout", ["lits", "kits19"])
def test_infer_postprocessing_writes_case_files_in_the_source_geometry(tmp_path, lits_dir, kits_dir, layout):
    exp = CTExperiment(lits_dir if layout == "lits" else kits_dir, layout=layout, **TINY_3D).prepare()
    entry = exp.val_cases()[0]
    preprocessing = exp.infer_transforms()
    item = preprocessing({"image": entry["image"]})
    onehot = exp.val_transforms()({"image": entry["image"], "label": entry["label"]})["label"]
    logits = torch.as_tensor(onehot) * 10.0  # the reference label, as confident logits in the network's geometry
    exp.infer_postprocessing(str(tmp_path), preprocessing)({"image": item["image"], "pred": logits})
    name = "volume-0" if layout == "lits" else "case_00000"
    assert sorted(os.listdir(tmp_path)) == [f"{name}_prob.nii.gz", f"{name}_seg.nii.gz"]
    source = nib.load(entry["label"])
    seg = nib.load(os.path.join(tmp_path, f"{name}_seg.nii.gz"))
    prob = nib.load(os.path.join(tmp_path, f"{name}_prob.nii.gz"))
    assert seg.get_data_dtype() == np.uint8
    np.testing.assert_allclose(seg.affine, source.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(seg.dataobj), np.asarray(source.dataobj))
    p = prob.get_fdata()
    assert p.shape == (*source.shape, 3)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    # softmax of (10, 0, 0): e^10 / (e^10 + 2) on the labelled class
    np.testing.assert_allclose(p.max(-1), math.exp(10) / (math.exp(10) + 2), rtol=1e-5)
    np.testing.assert_array_equal(p.argmax(-1), np.asarray(source.dataobj))


def test_infer_postprocessing_qubiq_writes_planar_slices(tmp_path, qubiq_dir):
    exp = QubiqExperiment(qubiq_dir, image_size=SIZE).prepare()
    entry = exp.val_cases()[0]
    preprocessing = exp.infer_transforms()
    item = preprocessing({"image": entry["image"]})
    raters = np.stack([_array(r) for r in entry["raters"]])[..., 0]  # the (H, W, 1) kidney files
    majority = raters.sum(0) >= 2
    logits = torch.as_tensor(np.where(majority, math.log(4.0), -math.log(4.0)), dtype=torch.float32)[None]
    exp.infer_postprocessing(str(tmp_path), preprocessing)({"image": item["image"], "pred": logits})
    assert sorted(os.listdir(tmp_path)) == ["case01_prob.nii.gz", "case01_seg.nii.gz"]
    source = nib.load(entry["image"])
    prob = nib.load(os.path.join(tmp_path, "case01_prob.nii.gz"))
    seg = nib.load(os.path.join(tmp_path, "case01_seg.nii.gz"))
    assert prob.shape == seg.shape == source.shape[:2]
    np.testing.assert_allclose(prob.affine, source.affine, atol=1e-6)
    np.testing.assert_allclose(prob.get_fdata(), np.where(majority, 0.8, 0.2), atol=1e-6)  # sigmoid(+-log 4)
    np.testing.assert_array_equal(np.asarray(seg.dataobj), majority.astype(np.uint8))
