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
synthetic data on first use, folds, 2D training slices and teacher files; then the train configs on those data sets:
the data-driven epsilon of each label mode (kd included), the inferers and the validation post-processing."""

from __future__ import annotations

import math
import os
import re
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.inferers import SimpleInferer, SliceInferer, SlidingWindowInferer

from monai_dml.bundle import BundleData, CTData, LabelMode, PrepareBatchTeacher, QubiqData, check_recipe
from monai_dml.data.synthetic import generate_dataset, generate_qubiq
from monai_dml.losses import DiceDomain, DMLCELoss, DMLVariant, KDLoss
from tests.bundles.utils import configs

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
    """A :py:class:`BundleData` with a fixed data list, to watch ``prepare()`` generate and list."""

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


# -- label modes ------------------------------------------------------------------------------------------------------
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
    ({"synthetic_cases": True}, "synthetic_cases"),
    ({"synthetic_size": 2.5}, "synthetic_size"),
    ({"fold": "--1"}, "fold"),
]


@pytest.mark.parametrize("kwargs, key", _CT_ERRORS, ids=[f"{k}-{i}" for i, (_, k) in enumerate(_CT_ERRORS)])
def test_ct_data_rejects_a_bad_key(tmp_path, kwargs, key):
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
    ({"num_folds": 0}, "num_folds"),
    ({"synthetic_size": 0}, "synthetic_size"),
]


@pytest.mark.parametrize("kwargs, key", _QUBIQ_ERRORS, ids=[f"{k}-{i}" for i, (_, k) in enumerate(_QUBIQ_ERRORS)])
def test_qubiq_data_rejects_a_bad_key(tmp_path, kwargs, key):
    with pytest.raises(ValueError, match=re.escape(f"'{key}'")):
        QubiqData(tmp_path / "data", **kwargs)


def test_accepted_spellings_are_normalised(tmp_path):
    ds = CTData(tmp_path / "data", layout="KiTS21", spatial_dims=3, label_mode="RATERS", fold="4")
    assert (ds.layout, ds.label_mode, ds.fold) == ("kits21", "raters", 4)
    assert ds.dataset_dir == str(tmp_path / "data") and ds.synthetic_dir is None
    # the rater stack is loaded and resampled beside image and label, with nearest interpolation
    assert (ds.keys, ds.modes) == (["image", "label", "raters"], ["bilinear", "nearest", "nearest"])
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
    ds = CTData(
        data, synthetic_dir=data, synthetic_cases=CT_CASES, synthetic_size=SIZE, synthetic_depth=DEPTH, **TINY_3D
    ).prepare()
    assert os.listdir(tmp_path) == ["synthetic_lits"]
    assert not [p for p in data.rglob("*") if ".partial" in p.name]
    assert [e["case"] for e in ds.datalist()] == [f"volume-{n}" for n in range(CT_CASES)]
    image = nib.load(ds.datalist()[0]["image"])
    assert image.shape == (SIZE, SIZE, DEPTH)


def test_prepare_writes_only_the_chosen_qubiq_data_set(tmp_path):
    data = tmp_path / "synthetic_qubiq"
    ds = QubiqData(data, synthetic_dir=data, qubiq_dataset="kidney", synthetic_cases=5, synthetic_size=SIZE).prepare()
    assert os.listdir(tmp_path) == ["synthetic_qubiq"]
    assert os.listdir(data) == ["kidney"]
    assert [e["case"] for e in ds.datalist()] == [f"kidney/case{n:02d}" for n in range(1, 6)]


# -- folds -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fold", range(5))
def test_qubiq_folds_partition_the_cases(qubiq_dir, fold):
    ds = QubiqData(qubiq_dir, fold=fold).prepare()
    every = [f"kidney/case{n:02d}" for n in range(1, QUBIQ_CASES + 1)]
    # contiguous 5-fold split of 10 cases (the paper's): fold f validates cases 2f+1 and 2f+2
    val = [f"kidney/case{2 * fold + 1:02d}", f"kidney/case{2 * fold + 2:02d}"]
    assert [e["case"] for e in ds.val_cases()] == val
    assert [e["case"] for e in ds.train_cases()] == [c for c in every if c not in val]
    assert ds.val_data() == ds.val_cases() and ds.train_data() == ds.train_cases()


def test_ct_folds_and_2d_training_slices(lits_dir):
    ds = CTData(lits_dir, fold=3).prepare()
    assert [e["case"] for e in ds.val_cases()] == ["volume-3"]
    assert [e["case"] for e in ds.train_cases()] == ["volume-0", "volume-1", "volume-2", "volume-4"]
    # the training slices: every axial slice (LiTS stores (x, y, z)) of a training volume holding tumour (label 2)
    expected = []
    for entry in ds.train_cases():
        label = _array(entry["label"])
        expected += [(entry["case"], k) for k in range(label.shape[2]) if (label[:, :, k] == 2).any()]
    with pytest.warns(UserWarning, match="volume-1"):  # the generated volume-1 has no tumour
        slices = ds.train_data()
    assert [(e["case"], e["slice"]) for e in slices] == expected
    assert all(e["axis"] == 2 for e in slices) and expected
    ds3 = CTData(lits_dir, fold=3, **TINY_3D).prepare()
    assert ds3.train_data() == ds3.train_cases()


def test_a_fold_without_cases_names_the_key(tmp_path):
    toy = _ToyData(tmp_path, num_folds=4, fold=3).prepare()
    assert len(toy.train_cases()) == 5
    with pytest.raises(ValueError, match=re.escape("'fold'")):
        toy.val_cases()


def test_kd_needs_every_teacher_file(lits_dir, tmp_path):
    ds = CTData(lits_dir, label_mode="kd", teacher_dir=tmp_path, **TINY_3D)
    with pytest.raises(FileNotFoundError, match=re.escape("'teacher_dir'")):
        ds.prepare()


def test_kd_lists_the_teacher_of_each_case(lits_dir, teacher_dir):
    ds = CTData(lits_dir, label_mode="kd", teacher_dir=teacher_dir, **TINY_3D).prepare()
    assert [e["teacher"] for e in ds.datalist()] == [
        os.path.join(teacher_dir, f"volume-{n}_prob.nii.gz") for n in range(CT_CASES)
    ]
    assert all("teacher" not in e for e in CTData(lits_dir, **TINY_3D).prepare().datalist())


def test_kits_cases_are_named_by_their_folder(kits_dir):
    ds = CTData(kits_dir, layout="kits19", fold=1, **TINY_3D).prepare()
    assert [e["case"] for e in ds.datalist()] == [f"case_{n:05d}" for n in range(CT_CASES)]
    assert [e["case"] for e in ds.val_cases()] == ["case_00001"]


def test_images_are_the_validation_fold_or_the_input_folder(lits_dir, tmp_path):
    ds = CTData(lits_dir, fold=4).prepare()
    assert ds.images() == [{"image": e["image"]} for e in ds.val_cases()]
    assert len(ds.images()) == 1 and ds.images()[0]["image"].endswith("volume-4.nii")
    for name in ("b.nii.gz", "a.nii"):
        (tmp_path / name).write_bytes(b"")
    assert ds.images(tmp_path) == [{"image": str(tmp_path / "a.nii")}, {"image": str(tmp_path / "b.nii.gz")}]
    assert ds.images("") == ds.images()


# -- the configs on these data sets ------------------------------------------------------------------------------------
def _parser(bundle: str, names: tuple[str, ...] = ("train",), **overrides: Any) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(configs(bundle, *names))
    parser.update(overrides)
    return parser


def _ct_counts(label: np.ndarray) -> np.ndarray:
    return np.bincount(label.astype(np.int64).ravel(), minlength=3)


def _tumour_slice_counts(ds: CTData) -> np.ndarray:
    """Per class, the voxel count of every axial training slice that holds tumour, read with nibabel."""
    counts = []
    for entry in ds.train_cases():
        label = _array(entry["label"])
        counts += [_ct_counts(label[:, :, k]) for k in range(label.shape[2]) if (label[:, :, k] == 2).any()]
    return np.asarray(counts)


def test_lits_2d_epsilon_auto_is_the_mean_over_training_slices(lits_dir, tmp_path):
    parser = _parser("lits_2d", dataset_dir=lits_dir, bundle_root=str(tmp_path), image_size=SIZE, fold=2)
    expected = _tumour_slice_counts(CTData(lits_dir, fold=2)).mean(0)
    with pytest.warns(UserWarning, match="volume-1"):  # the generated volume-1 has no tumour
        eps = parser.get_parsed_content("epsilon_auto")
    np.testing.assert_allclose(np.asarray(eps), expected, rtol=1e-6)


def test_lits_3d_epsilon_auto_reaches_the_loss(lits_dir, tmp_path):
    """``--epsilon @epsilon_auto``: the mean voxel count per class of the training volumes, as smooth_nr and _dr."""
    parser = _parser("lits_3d", dataset_dir=lits_dir, bundle_root=str(tmp_path), fold=0, epsilon="@epsilon_auto")
    volumes = [_ct_counts(_array(e["label"])) for e in CTData(lits_dir, fold=0, **TINY_3D).prepare().train_cases()]
    expected = np.mean(volumes, axis=0)
    loss = parser.get_parsed_content("loss")
    np.testing.assert_allclose(np.asarray(loss.dml.smooth_nr), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(loss.dml.smooth_dr), expected, rtol=1e-6)


def test_epsilon_auto_without_background_follows_the_loss(lits_dir, tmp_path):
    """``--include_background false``: the heuristic counts the foreground classes only, as the loss sums them."""
    parser = _parser(
        "lits_3d", dataset_dir=lits_dir, bundle_root=str(tmp_path), epsilon="@epsilon_auto", include_background=False
    )
    volumes = [_ct_counts(_array(e["label"])) for e in CTData(lits_dir, fold=0, **TINY_3D).prepare().train_cases()]
    loss = parser.get_parsed_content("loss")
    np.testing.assert_allclose(np.asarray(loss.dml.smooth_nr), np.mean(volumes, axis=0)[1:], rtol=1e-6)
    loss(torch.randn(1, 3, 4, 4, 4), torch.softmax(torch.randn(1, 3, 4, 4, 4), 1))  # two classes, two epsilons


def test_kd_epsilon_counts_the_label_not_the_teacher(lits_dir, teacher_dir, tmp_path):
    parser = _parser(
        "lits_2d", ("train", "kd"), dataset_dir=lits_dir, teacher_dir=teacher_dir, bundle_root=str(tmp_path)
    )
    parser.update({"image_size": SIZE, "fold": 0})
    loss = parser.get_parsed_content("loss")
    assert isinstance(loss, KDLoss) and check_recipe(parser.get_parsed_content("label_mode"), loss)
    assert isinstance(parser.get_parsed_content("train#trainer#prepare_batch"), PrepareBatchTeacher)
    expected = _tumour_slice_counts(CTData(lits_dir, fold=0)).mean(0)
    with pytest.warns(UserWarning, match="volume-1"):
        eps = parser.get_parsed_content("epsilon_auto")
        entry = parser.get_parsed_content("data").train_data()[0]
    np.testing.assert_allclose(np.asarray(eps), expected, rtol=1e-6)  # 3 classes: the label alone
    item = parser.get_parsed_content("train#preprocessing")(entry)
    label, teacher = torch.as_tensor(item["label"]), torch.as_tensor(item["teacher"])
    assert label.shape == teacher.shape == (3, SIZE, SIZE)
    raw = _array(entry["label"])[:, :, entry["slice"]].astype(np.int64)
    np.testing.assert_array_equal(np.sort(label.sum((1, 2)).numpy()), np.sort(_ct_counts(raw)))
    # the fixture's teacher is 0.8 on the labelled class and 0.1 elsewhere, in the label's geometry
    torch.testing.assert_close(teacher, 0.1 + 0.7 * label)


@pytest.mark.parametrize("mode", ["uniform", "majority", "hard", "ls"])
def test_qubiq_epsilon_auto_per_label_mode(qubiq_dir, tmp_path, mode):
    parser = _parser("qubiq_2d", dataset_dir=qubiq_dir, bundle_root=str(tmp_path), image_size=SIZE, fold=1)
    parser.update({"label_mode": mode, "ls_epsilon": 0.1})
    expected = []
    for entry in QubiqData(qubiq_dir, fold=1).prepare().train_cases():
        raters = np.stack([_array(r) > 0 for r in entry["raters"]])
        majority = (raters.sum(0) >= 2).sum()  # three raters: foreground where two agree
        expected.append(
            {
                "uniform": raters.sum() / len(raters),  # the rater mean
                "majority": majority,
                "hard": majority,  # QUBIQ's hard label is the majority vote
                "ls": 0.9 * majority + 0.1 / 2 * SIZE * SIZE,  # (1 - eps) y + eps / 2 summed over the pixels
            }[mode]
        )
    eps = parser.get_parsed_content("epsilon_auto")
    np.testing.assert_allclose(np.asarray(eps), [np.mean(expected)], rtol=1e-6)


def test_inferers(tmp_path):
    two = _parser("lits_2d", image_size=64, sw_batch_size=3).get_parsed_content("validate#inferer")
    assert isinstance(two, SliceInferer) and two.spatial_dim == 2 and tuple(two.roi_size) == (64, 64)
    assert two.sw_batch_size == 3
    three = _parser("lits_3d", patch_size=[32, 48, 16]).get_parsed_content("validate#inferer")
    assert isinstance(three, SlidingWindowInferer) and tuple(three.roi_size) == (32, 48, 16)
    assert isinstance(_parser("qubiq_2d").get_parsed_content("validate#inferer"), SimpleInferer)


def test_val_postprocessing_binary():
    # logits log(4) and -log(3): sigmoid 4/5 and 1/4
    pred = torch.tensor([[[math.log(4.0), -math.log(3.0)]]])
    soft = torch.tensor([[[0.5, 0.25]]])
    out = _parser("qubiq_2d").get_parsed_content("validate#postprocessing")({"pred": pred, "label_soft": soft})
    torch.testing.assert_close(torch.as_tensor(out["pred"]), torch.tensor([[[0.8, 0.25]]]))
    torch.testing.assert_close(torch.as_tensor(out["pred_hard"]), torch.tensor([[[1.0, 0.0]]]))
    torch.testing.assert_close(torch.as_tensor(out["label_mean"]), soft)


@pytest.mark.parametrize("bundle", ["lits_2d", "lits_3d"])
def test_val_postprocessing_softmax(bundle):
    probs = torch.tensor([[[0.2, 0.6]], [[0.3, 0.3]], [[0.5, 0.1]]])  # (C=3, 1, 2)
    out = _parser(bundle).get_parsed_content("validate#postprocessing")({"pred": torch.log(probs)})
    torch.testing.assert_close(torch.as_tensor(out["pred"]), probs)  # softmax of log p is p
    hard = torch.tensor([[[0.0, 1.0]], [[0.0, 0.0]], [[1.0, 0.0]]])  # argmax 2 then 0, one-hot
    torch.testing.assert_close(torch.as_tensor(out["pred_hard"]), hard)


def test_hu_windows_are_the_papers():
    assert _parser("lits_2d").get_parsed_content("hu_window") == [-60, 140]
    assert _parser("kits_2d").get_parsed_content("hu_window") == [-200, 300]
    assert _parser("lits_3d").get_parsed_content("hu_window") == [-60, 140]


def test_ct_loss_is_softmax_dml_ce_with_its_overrides():
    loss = _parser("lits_2d", variant="dml2", phi="bi", epsilon=1e-3).get_parsed_content("loss")
    assert type(loss) is DMLCELoss
    assert (loss.lambda_ce, loss.lambda_dml) == (0.25, 0.75)  # the paper's 0.25 CE + 0.75 DML
    assert loss.dml.softmax is True and loss.dml.sigmoid is False
    assert loss.dml.variant == DMLVariant.DML2 and loss.dml.phi == DiceDomain.BI
    torch.testing.assert_close(torch.as_tensor(loss.dml.smooth_nr), torch.tensor(1e-3))
    torch.testing.assert_close(torch.as_tensor(loss.dml.smooth_dr), torch.tensor(1e-3))


def test_qubiq_loss_is_sigmoid_dml_ce():
    loss = _parser("qubiq_2d").get_parsed_content("loss")
    assert type(loss) is DMLCELoss and loss.dml.sigmoid is True and loss.dml.softmax is False
    assert loss.dml.variant == DMLVariant.DML1 and loss.dml.phi == DiceDomain.I
    torch.testing.assert_close(torch.as_tensor(loss.dml.smooth_nr), torch.tensor(1e-5))


def test_kd_loss_of_kd_json():
    loss = _parser("lits_2d", ("train", "kd"), kd_temperature=2.0).get_parsed_content("loss")
    assert type(loss) is KDLoss and loss.temperature == 2.0
    assert (loss.label_weight, loss.teacher_weight) == (0.5, 0.5)
    assert loss.label_loss.dml.softmax is True and loss.label_loss.dml.sigmoid is False
    with pytest.raises(ValueError, match="'loss'"):  # label_mode kd without kd.json keeps DMLCELoss
        check_recipe("kd", _parser("lits_2d", label_mode="kd").get_parsed_content("loss"))
