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
"""
The bad-input catalogue (``docs/bad_inputs.md``): one entry per bad input, each built from generated data in the
real layouts and then corrupted. Every entry asserts the exception type and that its message names the argument,
the config key or the file; bundle entries run the bundle's ``initialize`` in process (``ConfigParser``, as
``tests/bundles/test_configs.py`` does) and assert that it stops at data preparation, before a network, a
checkpoint or a TensorBoard file exists, with the data set folder left as it was.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from monai_dml.bundle import inference_data, resume_from
from monai_dml.data import (
    build_slice_index,
    check_qubiq_files,
    kits_datalist,
    lits_datalist,
    load_datalist,
    qubiq_datalist,
)
from monai_dml.data.synthetic import generate_kits, generate_lits, generate_qubiq
from monai_dml.data.utils import check_mask_file, read_nifti_shape
from monai_dml.losses import DMLCELoss, DMLoss, KDLoss
from monai_dml.metrics import (
    BinarizedDiceMetric,
    ECEMetric,
    KDECalibrationErrorMetric,
    SoftDiceMetric,
    VolumeBiasMetric,
)
from monai_dml.transforms import LabelSmoothing, LoadRaters, PlanarChannels, RaterFusion
from tests.bundles.utils import TINY, configs, error_chain

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"
SIZE = 16  # in-plane size of every generated set (the generator's minimum)
KIDNEY = "kidney/Training/case01"


@dataclass(frozen=True)
class Entry:
    name: str
    error: type[BaseException]
    build: Callable[[Any], tuple[Callable[[], Any], list[str]]]
    bundle: bool


ENTRIES: dict[str, Entry] = {}


def entry(name: str, error: type[BaseException], bundle: bool = False) -> Callable:
    """Register a catalogue entry: ``build(ctx)`` returns the call that must raise ``error`` and the texts (argument,
    key, file) its message must contain."""

    def register(build: Callable[[Any], tuple[Callable[[], Any], list[str]]]) -> Callable:
        assert name not in ENTRIES, name
        ENTRIES[name] = Entry(name, error, build, bundle)
        return build

    return register


# ---------------------------------------------------------------------------------------------------------------
# generated data sets (once per module) and the corruptions


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pristine")
    qubiq, lits, kits = base / "qubiq", base / "lits", base / "kits"
    generate_qubiq(str(qubiq), num_cases=6, size=SIZE, datasets=["kidney", "brain-tumor"], missing_rater=False)
    generate_lits(str(lits), num_cases=5, size=SIZE, depth=8)
    generate_kits(str(kits), num_cases=5, size=SIZE, depth=8)
    return {"qubiq": qubiq, "lits": lits, "kits": kits}


class Context:
    """Fresh copies of the generated sets in ``tmp``, and the bundle folder that must stay unwritten."""

    def __init__(self, tmp: Path, sources: dict[str, Path]) -> None:
        self.tmp = tmp
        self.sources = sources
        self.bundle_root = tmp / "bundle"
        self.data = tmp / "data"
        self.data.mkdir()

    def copy(self, layout: str) -> Path:
        target = self.data / layout
        if not target.exists():
            shutil.copytree(self.sources[layout], target)
        return target

    def qubiq(self) -> Path:
        return self.copy("qubiq")

    def lits(self) -> Path:
        return self.copy("lits")

    def kits(self) -> Path:
        return self.copy("kits")

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """Every file under the data folder with its size and modification time."""
        out = {}
        for folder, _, files in os.walk(self.data):
            for f in files:
                stat = os.stat(os.path.join(folder, f))
                out[os.path.relpath(os.path.join(folder, f), self.data)] = (stat.st_size, stat.st_mtime_ns)
        return out

    def init_bundle(self, bundle: str, *extra: str, **overrides: Any) -> Callable[[], Any]:
        """The bundle's ``initialize`` section of ``train.json`` (and ``extra`` configs) with tiny sizes, here."""
        parser = ConfigParser()
        parser.read_config(configs(bundle, "train", *extra))
        parser.update({"bundle_root": str(self.bundle_root), "epochs": 1, **TINY[bundle], **overrides})
        return lambda: parser.get_parsed_content("initialize")


@pytest.fixture
def ctx(tmp_path: Path, sources: dict[str, Path]) -> Context:
    return Context(tmp_path, sources)


def nifti(path: Path | str, array: np.ndarray, affine: np.ndarray | None = None) -> str:
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), str(path))
    return str(path)


def load(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    img: Any = nib.load(str(path))
    return np.asanyarray(img.dataobj), img.affine


def truncate(path: Path | str, drop: int = 30) -> str:
    """Cut the end off a file (a download or copy that stopped): the NIfTI header stays readable."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:-drop])
    return str(path)


def garble(path: Path | str) -> str:
    Path(path).write_bytes(b"this is not a NIfTI file\n" * 8)
    return str(path)


def rater(ctx: Context, case: str = KIDNEY, seg: str = "task01_seg01.nii.gz") -> Path:
    return ctx.qubiq() / case / seg


def image(ctx: Context, case: str = KIDNEY) -> Path:
    return ctx.qubiq() / case / "image.nii.gz"


def qubiq_bundle(ctx: Context, **overrides: Any) -> Callable[[], Any]:
    return ctx.init_bundle("qubiq_2d", dataset_dir=str(ctx.qubiq()), **overrides)


def lits_bundle(ctx: Context, *extra: str, **overrides: Any) -> Callable[[], Any]:
    return ctx.init_bundle("lits_2d", *extra, dataset_dir=str(ctx.lits()), **overrides)


def lits_label(ctx: Context, number: int = 3) -> Path:
    return ctx.lits() / "Training Batch 2" / f"segmentation-{number}.nii"


# ---------------------------------------------------------------------------------------------------------------
# bundle entries: the qubiq_2d bundle


@entry("bundle-dataset-dir-missing", FileNotFoundError, bundle=True)
def _(ctx):
    missing = str(ctx.tmp / "no_such_folder")
    return ctx.init_bundle("qubiq_2d", dataset_dir=missing), ["'dataset_dir'", missing]


@entry("bundle-dataset-dir-empty", FileNotFoundError, bundle=True)
def _(ctx):
    empty = ctx.data / "empty"
    empty.mkdir()
    return ctx.init_bundle("qubiq_2d", dataset_dir=str(empty)), ["dataset_dir", str(empty), "'kidney'"]


@entry("bundle-qubiq-subfolder-empty", ValueError, bundle=True)
def _(ctx):
    root = ctx.data / "nocases"
    (root / "kidney" / "Training").mkdir(parents=True)
    return ctx.init_bundle("qubiq_2d", dataset_dir=str(root)), ["dataset_dir", str(root), "no QUBIQ case"]


@entry("bundle-rater-0-255", ValueError, bundle=True)
def _(ctx):
    path = rater(ctx)
    data, affine = load(path)
    nifti(path, (data * 255).astype(np.uint8), affine)
    return qubiq_bundle(ctx), [str(path), "0/255"]


@entry("bundle-rater-not-binary", ValueError, bundle=True)
def _(ctx):
    path = rater(ctx)
    data, affine = load(path)
    nifti(path, data.astype(np.float32) * 0.5, affine)
    return qubiq_bundle(ctx), [str(path), "binary mask"]


@entry("bundle-rater-nan", ValueError, bundle=True)
def _(ctx):
    path = rater(ctx)
    data, affine = load(path)
    data = data.astype(np.float32)
    data[0, 0] = np.nan
    nifti(path, data, affine)
    return qubiq_bundle(ctx), [str(path), "NaN"]


@entry("bundle-image-truncated", ValueError, bundle=True)
def _(ctx):
    path = truncate(image(ctx))
    return qubiq_bundle(ctx), [path, "truncated"]


@entry("bundle-image-corrupt", ValueError, bundle=True)
def _(ctx):
    path = garble(image(ctx))
    return qubiq_bundle(ctx), [path]


@entry("bundle-rater-truncated", ValueError, bundle=True)
def _(ctx):
    path = truncate(rater(ctx), drop=6)  # a tiny mask: its header is cut too
    return qubiq_bundle(ctx), [path]


@entry("bundle-image-nan", ValueError, bundle=True)
def _(ctx):
    path = image(ctx)
    data, affine = load(path)
    data = data.astype(np.float32)
    data[3, 3] = np.nan
    nifti(path, data, affine)
    return qubiq_bundle(ctx), [str(path), "NaN"]


@entry("bundle-image-inf", ValueError, bundle=True)
def _(ctx):
    path = image(ctx)
    data, affine = load(path)
    data = data.astype(np.float32)
    data[3, 3] = np.inf
    nifti(path, data, affine)
    return qubiq_bundle(ctx), [str(path), "Inf"]


@entry("bundle-rater-shape-mismatch", ValueError, bundle=True)
def _(ctx):
    path = rater(ctx)
    data, affine = load(path)
    nifti(path, data[:-2], affine)
    return qubiq_bundle(ctx), [str(path), str(image(ctx))]


@entry("bundle-all-raters-missing", ValueError, bundle=True)
def _(ctx):
    case = ctx.qubiq() / KIDNEY
    for f in case.glob("task*_seg*.nii.gz"):
        f.unlink()
    return qubiq_bundle(ctx), ["kidney/case01", "incomplete"]


@entry("bundle-image-missing", ValueError, bundle=True)
def _(ctx):
    image(ctx).unlink()
    return qubiq_bundle(ctx), ["kidney/case01", str(ctx.qubiq() / KIDNEY)]


@entry("bundle-wrong-channel-count", ValueError, bundle=True)
def _(ctx):
    path = image(ctx, "brain-tumor/Training/case02")
    data, affine = load(path)
    nifti(path, data[..., :3], affine)  # three MR modalities where brain-tumor has four
    return qubiq_bundle(ctx, qubiq_dataset="brain-tumor"), [str(path), "4 channel"]


@entry("bundle-multichannel-image-for-kidney", ValueError, bundle=True)
def _(ctx):
    path = image(ctx)
    data, affine = load(path)
    nifti(path, np.repeat(data, 4, axis=-1), affine)
    return qubiq_bundle(ctx), [str(path), "(16, 16, 4)"]


@entry("bundle-qubiq-dataset-unknown", ValueError, bundle=True)
def _(ctx):
    return qubiq_bundle(ctx, qubiq_dataset="kidnee"), ["'qubiq_dataset'", "kidney"]


@entry("bundle-qubiq-task-out-of-range", ValueError, bundle=True)
def _(ctx):
    return qubiq_bundle(ctx, qubiq_task=2), ["'qubiq_task'"]


@entry("bundle-fold-out-of-range", ValueError, bundle=True)
def _(ctx):
    return qubiq_bundle(ctx, fold=5), ["'fold'", "0-4"]


@entry("bundle-fold-not-integer", ValueError, bundle=True)
def _(ctx):
    return qubiq_bundle(ctx, fold="first"), ["'fold'", "'first'"]


@entry("bundle-num-folds-one", ValueError, bundle=True)
def _(ctx):
    return qubiq_bundle(ctx, data={**_qubiq_data(), "num_folds": 1}), ["'num_folds'"]


def _qubiq_data() -> dict[str, Any]:
    with open(configs("qubiq_2d", "train")[0]) as f:
        return dict(json.load(f)["data"])


@entry("bundle-label-mode-unknown", ValueError, bundle=True)
def _(ctx):
    return qubiq_bundle(ctx, label_mode="softest"), ["label_mode", "'softest'"]


@entry("bundle-label-mode-kd-without-teacher-data", ValueError, bundle=True)
def _(ctx):
    return qubiq_bundle(ctx, label_mode="kd"), ["label_mode", "'kd'"]


@entry("bundle-synthetic-cases-zero", ValueError, bundle=True)
def _(ctx):
    return qubiq_bundle(ctx, data={**_qubiq_data(), "synthetic_cases": 0}), ["'synthetic_cases'"]


@entry("bundle-variant-unknown", ValueError, bundle=True)
def _(ctx):
    return qubiq_bundle(ctx, variant="dml3"), ["variant", "'dml3'"]


@entry("bundle-phi-unknown", ValueError, bundle=True)
def _(ctx):
    return qubiq_bundle(ctx, phi="Q"), ["phi", "'Q'"]


# the CT bundles (lits_2d; kits_2d shares the code)


@entry("bundle-ct-dataset-dir-missing", FileNotFoundError, bundle=True)
def _(ctx):
    missing = str(ctx.tmp / "no_lits")
    return ctx.init_bundle("lits_2d", dataset_dir=missing), ["'dataset_dir'", missing]


@entry("bundle-ct-dataset-dir-empty", ValueError, bundle=True)
def _(ctx):
    empty = ctx.data / "empty"
    empty.mkdir()
    return ctx.init_bundle("lits_2d", dataset_dir=str(empty)), ["dataset_dir", str(empty), "no case"]


@entry("bundle-ct-label-0-255", ValueError, bundle=True)
def _(ctx):
    path = lits_label(ctx)
    data, affine = load(path)
    nifti(path, (data > 0).astype(np.uint8) * 255, affine)
    return lits_bundle(ctx), [str(path), "0-2", "255"]


@entry("bundle-ct-label-truncated", ValueError, bundle=True)
def _(ctx):
    path = truncate(lits_label(ctx), drop=200)
    return lits_bundle(ctx), [path, "truncated"]


@entry("bundle-ct-image-truncated", ValueError, bundle=True)
def _(ctx):
    path = truncate(ctx.lits() / "Training Batch 2" / "volume-2.nii", drop=200)  # LiTS: uncompressed .nii
    return lits_bundle(ctx), [path, "truncated"]


@entry("bundle-ct-3d-image-truncated", ValueError, bundle=True)
def _(ctx):
    path = truncate(ctx.kits() / "case_00003" / "imaging.nii.gz")  # KiTS: .nii.gz, 3D bundle
    return ctx.init_bundle("kits_3d", dataset_dir=str(ctx.kits()), layout="kits19"), [path, "truncated"]


@entry("bundle-ct-label-shape-mismatch", ValueError, bundle=True)
def _(ctx):
    path = lits_label(ctx)
    data, affine = load(path)
    nifti(path, data[:, :, :-1], affine)
    return lits_bundle(ctx), [str(path)]


@entry("bundle-ct-label-missing", ValueError, bundle=True)
def _(ctx):
    lits_label(ctx).unlink()
    return lits_bundle(ctx), ["segmentation-3", "incomplete"]


@entry("bundle-ct-layout-unknown", ValueError, bundle=True)
def _(ctx):
    return lits_bundle(ctx, layout="kits22"), ["'layout'", "'kits22'"]


@entry("bundle-ct-num-classes-one", ValueError, bundle=True)
def _(ctx):
    return lits_bundle(ctx, num_classes=1), ["'num_classes'"]


@entry("bundle-ct-kd-without-teacher-dir", ValueError, bundle=True)
def _(ctx):
    return lits_bundle(ctx, "kd", label_mode="kd"), ["'teacher_dir'"]


@entry("bundle-ct-teacher-file-missing", FileNotFoundError, bundle=True)
def _(ctx):
    teachers = ctx.data / "teachers"
    teachers.mkdir()
    return lits_bundle(ctx, "kd", label_mode="kd", teacher_dir=str(teachers)), ["'teacher_dir'", str(teachers)]


@entry("bundle-ct-spatial-dims", ValueError, bundle=True)
def _(ctx):
    with open(configs("lits_2d", "train")[0]) as f:
        data = dict(json.load(f)["data"])
    return lits_bundle(ctx, data={**data, "spatial_dims": 4}), ["'spatial_dims'"]


# ---------------------------------------------------------------------------------------------------------------
# data readers and loading


@entry("qubiq-dataset-dir-missing", FileNotFoundError)
def _(ctx):
    missing = str(ctx.tmp / "nothing")
    return lambda: qubiq_datalist(missing), ["dataset_dir", missing]


@entry("qubiq-dataset-dir-is-a-file", NotADirectoryError)
def _(ctx):
    path = ctx.tmp / "file.txt"
    path.write_text("x")
    return lambda: qubiq_datalist(path), ["dataset_dir", str(path)]


@entry("qubiq-dataset-dir-empty", ValueError)
def _(ctx):
    empty = ctx.data / "empty"
    empty.mkdir()
    return lambda: qubiq_datalist(empty), ["dataset_dir", str(empty)]


@entry("qubiq-missing-rater-file", ValueError)
def _(ctx):
    rater(ctx, seg="task01_seg03.nii.gz").unlink()
    return lambda: qubiq_datalist(ctx.qubiq(), missing_raters="error"), ["missing_raters", "kidney/case01", "[3]"]


@entry("qubiq-missing-raters-option", ValueError)
def _(ctx):
    root = ctx.qubiq()
    return lambda: qubiq_datalist(root, missing_raters="drop"), ["missing_raters", "'drop'"]


@entry("qubiq-incomplete-option", ValueError)
def _(ctx):
    root = ctx.qubiq()
    return lambda: qubiq_datalist(root, incomplete="keep"), ["incomplete", "'skip'"]


@entry("qubiq-rater-shape-mismatch-header", ValueError)
def _(ctx):
    path = rater(ctx)
    data, affine = load(path)
    nifti(path, data[:, :-1], affine)
    return lambda: qubiq_datalist(ctx.qubiq(), datasets=["kidney"]), [str(path), str(image(ctx))]


@entry("qubiq-rater-header-corrupt", ValueError)
def _(ctx):
    path = garble(rater(ctx))
    return lambda: qubiq_datalist(ctx.qubiq(), datasets=["kidney"]), [path]


@entry("qubiq-files-image-truncated", ValueError)
def _(ctx):
    listing = qubiq_datalist(ctx.qubiq(), datasets=["kidney"])  # listed while intact, then cut short
    path = truncate(image(ctx))
    return lambda: check_qubiq_files(listing, in_channels=1), [path, "EOFError"]


@entry("nifti-gz-truncated-header-intact", ValueError)
def _(ctx):
    path = truncate(nifti(ctx.tmp / "volume.nii.gz", np.random.default_rng(0).random((24, 24, 8), np.float32)))
    return lambda: read_nifti_shape(path), [path, "truncated"]


@entry("qubiq-files-rater-empty-mask", ValueError)
def _(ctx):
    listing = qubiq_datalist(ctx.qubiq(), datasets=["kidney"], check_shapes=False)
    path = nifti(rater(ctx), np.zeros((0, SIZE), np.uint8))
    return lambda: check_qubiq_files(listing), [path, "no voxel"]


@entry("mask-file-label-map", ValueError)
def _(ctx):
    path = nifti(ctx.tmp / "mask.nii.gz", np.arange(16, dtype=np.uint8).reshape(4, 4) % 3)
    return lambda: check_mask_file(path), [path, "0, 1, 2"]


@entry("nifti-header-not-nifti", ValueError)
def _(ctx):
    path = garble(ctx.tmp / "x.nii.gz")
    return lambda: read_nifti_shape(path), [path]


@entry("load-raters-no-file", ValueError)
def _(ctx):
    return lambda: LoadRaters()([]), ["filenames", "R = 0"]


@entry("load-raters-file-missing", FileNotFoundError)
def _(ctx):
    path = str(rater(ctx, seg="task01_seg09.nii.gz"))
    return lambda: LoadRaters()([str(rater(ctx)), path]), [path]


@entry("load-raters-truncated", ValueError)
def _(ctx):
    path = truncate(rater(ctx, seg="task01_seg02.nii.gz"), drop=6)
    return lambda: LoadRaters()([str(rater(ctx)), path]), [path]


@entry("load-raters-shape-mismatch", ValueError)
def _(ctx):
    first = str(rater(ctx))
    path = nifti(ctx.tmp / "small.nii.gz", np.zeros((SIZE, SIZE - 2, 1), np.uint8), load(first)[1])
    return lambda: LoadRaters()([first, path]), [path, first]


@entry("load-raters-affine-mismatch", ValueError)
def _(ctx):
    first = str(rater(ctx))
    data, affine = load(first)
    path = nifti(ctx.tmp / "moved.nii.gz", data, affine + np.diag([1.0, 0, 0, 0]))
    return lambda: LoadRaters()([first, path]), [path, "affine"]


@entry("lits-dataset-dir-empty", ValueError)
def _(ctx):
    empty = ctx.data / "empty"
    empty.mkdir()
    return lambda: lits_datalist(empty), ["dataset_dir", str(empty)]


@entry("lits-label-shape-mismatch", ValueError)
def _(ctx):
    path = lits_label(ctx, 4)
    data, affine = load(path)
    nifti(path, data[:-1], affine)
    return lambda: lits_datalist(ctx.lits()), [str(path), "volume-4"]


@entry("kits-segmentation-missing", ValueError)
def _(ctx):
    path = ctx.kits() / "case_00002" / "segmentation.nii.gz"
    path.unlink()
    return lambda: kits_datalist(ctx.kits()), ["case_00002", "incomplete"]


@entry("kits-dataset-dir-missing", FileNotFoundError)
def _(ctx):
    missing = str(ctx.tmp / "kits")
    return lambda: kits_datalist(missing), ["dataset_dir", missing]


@entry("slice-index-label-0-255", ValueError)
def _(ctx):
    path = lits_label(ctx)
    data, affine = load(path)
    nifti(path, (data > 0).astype(np.uint8) * 255, affine)
    listing = lits_datalist(ctx.lits())
    cache = str(ctx.tmp / "slices.json")
    return lambda: build_slice_index(listing, progress=False, num_classes=3, cache_file=cache), [str(path), "255"]


@entry("slice-index-label-nan", ValueError)
def _(ctx):
    path = lits_label(ctx)
    data, affine = load(path)
    data = data.astype(np.float32)
    data[0, 0, 0] = np.nan
    nifti(path, data, affine)
    listing = lits_datalist(ctx.lits())
    cache = str(ctx.tmp / "slices.json")
    return lambda: build_slice_index(listing, progress=False, cache_file=cache), [str(path), "NaN"]


@entry("datalist-json-missing", FileNotFoundError)
def _(ctx):
    path = str(ctx.tmp / "datalist.json")
    return lambda: load_datalist(path), [path]


@entry("datalist-json-invalid", ValueError)
def _(ctx):
    path = ctx.tmp / "datalist.json"
    path.write_text("{'training': [")
    return lambda: load_datalist(path), [str(path), "JSON"]


@entry("datalist-json-key-missing", ValueError)
def _(ctx):
    path = ctx.tmp / "datalist.json"
    path.write_text(json.dumps({"validation": []}))
    return lambda: load_datalist(path), [str(path), "'training'"]


@entry("inference-input-dir-empty", FileNotFoundError)
def _(ctx):
    empty = ctx.data / "empty"
    empty.mkdir()
    return lambda: inference_data(empty), ["'input_dir'", str(empty)]


@entry("resume-without-checkpoint", FileNotFoundError)
def _(ctx):
    path = str(ctx.tmp / "models" / "checkpoint_last.pt")
    return lambda: resume_from(True, path), ["'resume'", path]


@entry("generator-size-too-small", ValueError)
def _(ctx):
    return lambda: generate_qubiq(str(ctx.tmp / "gen"), num_cases=2, size=8), ["size"]


# ---------------------------------------------------------------------------------------------------------------
# transforms

RATERS = torch.tensor([[[0, 1], [1, 1]], [[0, 0], [1, 1]], [[0, 1], [0, 1]]], dtype=torch.float32)  # (R=3, 2, 2)


@entry("fusion-raters-0-255", ValueError)
def _(ctx):
    return lambda: RaterFusion(method="majority")(RATERS * 255), ["img", "255"]


@entry("fusion-raters-nan", ValueError)
def _(ctx):
    stack = RATERS.clone()
    stack[0, 0, 0] = float("nan")
    return lambda: RaterFusion(method="uniform")(stack), ["img", "NaN"]


@entry("fusion-raters-no-rater-axis", ValueError)
def _(ctx):
    return lambda: RaterFusion(method="uniform")(RATERS[0]), ["img", "(R, H, W)"]


@entry("fusion-method-unknown", ValueError)
def _(ctx):
    return lambda: RaterFusion(method="median"), ["method='median'", "majority"]


@entry("smoothing-epsilon-out-of-range", ValueError)
def _(ctx):
    return lambda: LabelSmoothing(epsilon=1.5), ["epsilon", "1.5"]


@entry("smoothing-soft-label-above-one", ValueError)
def _(ctx):
    return lambda: LabelSmoothing(epsilon=0.1)(torch.full((1, 2, 2), 2.0)), ["img", "[0, 1]"]


@entry("smoothing-method-unknown", ValueError)
def _(ctx):
    return lambda: LabelSmoothing(method="gaussian"), ["method", "'gaussian'"]


@entry("planar-too-many-channels", ValueError)
def _(ctx):
    return lambda: PlanarChannels()(torch.zeros(1, 4, 4, 5)), ["img", "(1, 4, 4, 5)"]


# ---------------------------------------------------------------------------------------------------------------
# losses (monai_dml.losses; catalogued as they are)

LOGITS = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])  # (B=1, C=1, 2, 2)
SOFT = torch.tensor([[[[0.9, 0.2], [0.6, 0.0]]]])


@entry("loss-shape-mismatch", ValueError)
def _(ctx):
    return lambda: DMLoss(sigmoid=True)(LOGITS, SOFT[..., :1]), ["target (1, 1, 2, 1)", "input (1, 1, 2, 2)"]


@entry("loss-soft-label-above-one", ValueError)
def _(ctx):
    return lambda: DMLoss(sigmoid=True)(LOGITS, SOFT * 2), ["target", "[0, 1]"]


@entry("loss-soft-label-negative", ValueError)
def _(ctx):
    return lambda: DMLCELoss(sigmoid=True)(LOGITS, SOFT - 0.5), ["target", "[0, 1]"]


@entry("loss-label-nan", ValueError)
def _(ctx):
    target = SOFT.clone()
    target[0, 0, 0, 0] = float("nan")
    return lambda: DMLoss(sigmoid=True)(LOGITS, target), ["target", "NaN"]


@entry("loss-prediction-nan", ValueError)
def _(ctx):
    logits = LOGITS.clone()
    logits[0, 0, 0, 0] = float("nan")
    return lambda: DMLoss(sigmoid=True)(logits, SOFT), ["input", "NaN"]


@entry("loss-prediction-inf-without-activation", ValueError)
def _(ctx):
    probs = torch.sigmoid(LOGITS)
    probs[0, 0, 0, 0] = float("inf")
    return lambda: DMLoss()(probs, SOFT), ["input", "Inf"]


@entry("loss-label-map-0-255", ValueError)
def _(ctx):
    labels = torch.tensor([[[[0, 255], [255, 0]]]])
    return lambda: DMLCELoss(softmax=True, to_onehot_y=True)(torch.zeros(1, 3, 2, 2), labels), ["target", "255"]


@entry("loss-variant-unknown", ValueError)
def _(ctx):
    return lambda: DMLoss(variant="dml3"), ["variant", "'dml3'"]


@entry("loss-phi-unknown", ValueError)
def _(ctx):
    return lambda: DMLoss(phi="Q"), ["phi", "'Q'"]


@entry("loss-lambda-negative", ValueError)
def _(ctx):
    return lambda: DMLCELoss(lambda_dml=-1.0), ["lambda_dml"]


@entry("kd-teacher-shape-mismatch", ValueError)
def _(ctx):
    teacher = torch.full((1, 3, 2, 1), 1 / 3)
    labels = torch.zeros(1, 1, 2, 2)
    return lambda: KDLoss(softmax=True, to_onehot_y=True)(torch.zeros(1, 3, 2, 2), labels, teacher), ["teacher"]


@entry("kd-teacher-nan", ValueError)
def _(ctx):
    teacher = torch.full((1, 3, 2, 2), float("nan"))
    labels = torch.zeros(1, 1, 2, 2)
    return lambda: KDLoss(softmax=True, to_onehot_y=True)(torch.zeros(1, 3, 2, 2), labels, teacher), [
        "teacher",
        "NaN",
    ]


@entry("kd-teacher-missing", TypeError)
def _(ctx):
    return lambda: KDLoss(softmax=True, to_onehot_y=True)(torch.zeros(1, 3, 2, 2), torch.zeros(1, 1, 2, 2)), ["teacher"]


@entry("kd-temperature-zero", ValueError)
def _(ctx):
    return lambda: KDLoss(temperature=0.0), ["temperature"]


# ---------------------------------------------------------------------------------------------------------------
# metrics (monai_dml.metrics; catalogued as they are)

PRED = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]])  # (B=1, C=1, 2, 2) probabilities
HARD = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])


@entry("metric-shape-mismatch", ValueError)
def _(ctx):
    return lambda: SoftDiceMetric()(PRED, HARD[..., :1]), ["y_pred", "y", "(1, 1, 2, 1)"]


@entry("metric-reference-0-255", ValueError)
def _(ctx):
    return lambda: SoftDiceMetric()(PRED, HARD * 255), ["y ", "255"]


@entry("metric-prediction-nan", ValueError)
def _(ctx):
    pred = PRED.clone()
    pred[0, 0, 0, 0] = float("nan")
    return lambda: ECEMetric()(pred, HARD), ["y_pred", "NaN"]


@entry("metric-prediction-inf", ValueError)
def _(ctx):
    pred = PRED.clone()
    pred[0, 0, 0, 0] = float("inf")
    return lambda: VolumeBiasMetric()(pred, HARD), ["y_pred", "Inf"]


@entry("metric-prediction-logits", ValueError)
def _(ctx):
    return lambda: KDECalibrationErrorMetric()(PRED * 4 - 2, HARD), ["y_pred", "[0, 1]"]


@entry("metric-thresholds-out-of-range", ValueError)
def _(ctx):
    return lambda: BinarizedDiceMetric(thresholds=[1.5]), ["thresholds", "1.5"]


@entry("metric-mode-unknown", ValueError)
def _(ctx):
    return lambda: ECEMetric(mode="macro"), ["mode", "'macro'"]


# ---------------------------------------------------------------------------------------------------------------


def _raised(exc: BaseException, error: type[BaseException]) -> BaseException | None:
    """``exc`` or the first exception it was raised from that is an ``error``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, error):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@pytest.mark.parametrize("name", list(ENTRIES))
def test_bad_input(name: str, ctx: Context) -> None:
    item = ENTRIES[name]
    call, names = item.build(ctx)
    before = ctx.snapshot()
    with pytest.raises(Exception) as info:
        call()
    raised = _raised(info.value, item.error)
    assert raised is not None, f"expected {item.error.__name__}, got\n{error_chain(info.value)}"
    for text in names:
        assert text in str(raised), f"{text!r} not in {type(raised).__name__}: {raised}"
    assert ctx.snapshot() == before, "the data set folder changed"
    if item.bundle:
        # stopped at the data checks: no models/, eval/ (TensorBoard) or generated data in the bundle folder
        assert not ctx.bundle_root.exists(), sorted(str(p) for p in ctx.bundle_root.rglob("*"))


def test_catalogue_size():
    assert len(ENTRIES) >= 40


def _documented() -> dict[str, str]:
    """``{entry name: error type}`` from the table of ``docs/bad_inputs.md``."""
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"^\|.*\|\s*`(\w+)`\s*\|.*\|\s*`([\w-]+)`\s*\|$", line)
        if match:
            rows[match.group(2)] = match.group(1)
    return rows


def test_docs_table_matches_the_catalogue():
    documented = _documented()
    assert sorted(documented) == sorted(ENTRIES)
    wrong = {n: (t, ENTRIES[n].error.__name__) for n, t in documented.items() if ENTRIES[n].error.__name__ != t}
    assert not wrong, wrong
