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
Wang et al. (2023), Tables 4 and 7: a small student trained with hard labels, label smoothing, and distillation from
an uncalibrated, a temperature-scaled and a KDE-calibrated teacher, on the synthetic LiTS and KiTS 2D layouts.

Per layout: the volumes of :py:func:`monai_dml.data.synthetic.generate_dataset` are read with the package's data
lists (fold 0 validates), HU-windowed as in the bundles, and cut into axial slices (training: the slices with
tumour, as the 2D bundles). A larger BasicUNet teacher trains on hard labels; :py:class:`TemperatureScaling` and
:py:class:`KDECalibrator` are fitted on its validation-fold probabilities; a smaller student trains with
``DMLCELoss`` on one-hot (``hard``) or :py:class:`LabelSmoothing` (``ls``) labels, or with :py:class:`KDLoss` on
each teacher's training-slice maps; Table 7's ablation adds two students distilled from the uncalibrated teacher
with only the CE (``kd_ce``) or only the DML (``kd_dml``) part in the teacher term. Reported per validation volume:
Dice of the arg-max (organ and tumour, mean) and ECE (top label), in percent, and the teacher's ECE on the
validation fold before and after each calibration.

Run ``python -m monai_dml.experiments wang_kd [--quick]``.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.utils import set_determinism

from monai_dml.calibration import KDECalibrator, TemperatureScaling, calibration_report
from monai_dml.data import kits_datalist, lits_datalist
from monai_dml.data.synthetic import generate_dataset
from monai_dml.experiments.common import one_thread, predict_logits, stopwatch, train_segmenter, write_results
from monai_dml.losses import DMLCELoss, KDLoss
from monai_dml.metrics import compute_ece, compute_soft_dice
from monai_dml.networks import build_network
from monai_dml.transforms import LabelSmoothing

__all__ = ["FULL", "QUICK", "KDSettings", "run"]

NAME = "wang_kd"
# layout -> (data list reader, HU window of Sect. 3.1)
LAYOUTS = {"lits": (lits_datalist, (-60.0, 140.0)), "kits19": (kits_datalist, (-200.0, 300.0))}
STUDENTS = ("hard", "ls", "kd", "kd_temperature", "kd_kde", "kd_ce", "kd_dml")
# Table 7's ablation: the uncalibrated teacher's term holds only its CE or only its DML part
ABLATION = {"kd_ce": ("ce",), "kd_dml": ("dml",)}
NUM_CLASSES = 3


@dataclass(frozen=True)
class KDSettings:
    """
    One scale of the experiment.

    Attributes:
        layouts: synthetic layouts (``"lits"``, ``"kits19"``).
        cases, size, depth: generated volumes per layout, in-plane size and slices.
        num_folds: folds of the data list (fold 0 validates).
        epochs: training epochs of teacher and students.
        teacher_features, student_features: BasicUNet widths.
        learning_rate: initial SGD learning rate.
        kde_fit_voxels: voxels the KDE calibrator keeps.
    """

    layouts: tuple[str, ...]
    cases: int
    size: int
    depth: int
    num_folds: int
    epochs: int
    teacher_features: tuple[int, ...]
    student_features: tuple[int, ...]
    learning_rate: float = 0.1
    kde_fit_voxels: int = 1000


FULL = KDSettings(("lits", "kits19"), 20, 64, 24, 5, 40, (16, 16, 32, 64, 128, 16), (8, 8, 16, 32, 32, 8))
QUICK = KDSettings(("lits",), 6, 32, 12, 3, 20, (16, 16, 32, 64, 64, 16), (4, 4, 8, 16, 16, 4))


def _read(path: str) -> np.ndarray:
    image: Any = nib.load(path)
    return np.asarray(image.dataobj, dtype=np.float64)


def _volumes(layout: str, s: KDSettings, root: str, seed: int) -> list[dict[str, Any]]:
    """Windowed image ``(1, H, W, D)`` in [0, 1], one-hot label ``(3, H, W, D)`` and fold of every case."""
    reader, (low, high) = LAYOUTS[layout]
    folder = generate_dataset(
        layout, str(Path(root) / layout), num_cases=s.cases, size=s.size, depth=s.depth, seed=seed
    )
    out = []
    for entry in reader(folder, num_folds=s.num_folds):
        image = np.clip((_read(entry["image"]) - low) / (high - low), 0.0, 1.0)
        label = torch.as_tensor(np.rint(_read(entry["label"])), dtype=torch.long)
        onehot = torch.nn.functional.one_hot(label.clamp(0, NUM_CLASSES - 1), NUM_CLASSES).permute(3, 0, 1, 2)
        out.append(
            {"image": torch.as_tensor(image, dtype=torch.float32)[None], "label": onehot.float(), "fold": entry["fold"]}
        )
    return out


def _slices(volumes: list[dict[str, Any]], tumour_only: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for v in volumes:
        keep = [k for k in range(v["image"].shape[-1]) if not tumour_only or bool(v["label"][2, ..., k].any())]
        images += [v["image"][..., k] for k in keep]
        labels += [v["label"][..., k] for k in keep]
    return torch.stack(images), torch.stack(labels)


def _volume_probs(net: torch.nn.Module, volume: dict[str, Any]) -> torch.Tensor:
    """Slice-wise softmax of one volume, ``(3, H, W, D)``."""
    slices = volume["image"].permute(3, 0, 1, 2)  # (D, 1, H, W)
    return torch.softmax(predict_logits(net, slices), dim=1).permute(1, 2, 3, 0)


def _scores(probs: list[torch.Tensor], volumes: list[dict[str, Any]]) -> dict[str, float]:
    dice, ece = [], []
    for p, v in zip(probs, volumes, strict=True):
        hard = torch.nn.functional.one_hot(p.argmax(0), NUM_CLASSES).permute(3, 0, 1, 2).float()
        d = compute_soft_dice(hard[None], v["label"][None], include_background=False)
        dice.append(float(torch.nan_to_num(d, nan=1.0).mean()))
        ece.append(float(compute_ece(p[None], v["label"][None], percent=True).mean()))
    return {"dice": round(100 * float(np.mean(dice)), 2), "ece": round(float(np.mean(ece)), 3)}


def _network(features: tuple[int, ...], seed: int) -> torch.nn.Module:
    set_determinism(seed)
    return build_network("basicunet", 2, 1, NUM_CLASSES, features=features)


def _layout(layout: str, s: KDSettings, root: str, seed: int) -> list[dict[str, Any]]:
    volumes = _volumes(layout, s, root, seed)
    train = [v for v in volumes if v["fold"] != 0]
    val = [v for v in volumes if v["fold"] == 0]
    images, labels = _slices(train, tumour_only=True)
    fit: dict[str, Any] = {"epochs": s.epochs, "learning_rate": s.learning_rate, "seed": seed}
    teacher = _network(s.teacher_features, seed)
    train_segmenter(teacher, images, (labels,), DMLCELoss(softmax=True), **fit)
    val_probs = [_volume_probs(teacher, v) for v in val]
    flat_p = torch.cat([p.reshape(NUM_CLASSES, -1) for p in val_probs], 1)[None]
    flat_y = torch.cat([v["label"].reshape(NUM_CLASSES, -1) for v in val], 1)[None]
    calibrators = {
        "kd_temperature": TemperatureScaling().fit(flat_p, flat_y),
        "kd_kde": KDECalibrator(max_fit_voxels=s.kde_fit_voxels, seed=seed).fit(flat_p, flat_y),
    }
    train_teacher = torch.softmax(predict_logits(teacher, images), dim=1)
    teacher_maps = {"kd": train_teacher}
    teacher_ece = {"kd": _scores(val_probs, val)["ece"]}
    for name, cal in calibrators.items():
        teacher_maps[name] = torch.as_tensor(cal(train_teacher, batched=True)).float()
        teacher_ece[name] = round(100 * calibration_report(cal, flat_p, flat_y)["ece_after"], 3)
    rows: list[dict[str, Any]] = [
        {"layout": layout, "model": "teacher", **_scores(val_probs, val), "teacher_ece": None, "gain": None}
    ]
    smooth = LabelSmoothing(epsilon=0.1)
    for student in STUDENTS:
        net = _network(s.student_features, seed)
        if student == "hard":
            train_segmenter(net, images, (labels,), DMLCELoss(softmax=True), **fit)
        elif student == "ls":
            soft = torch.stack([torch.as_tensor(smooth(y)) for y in labels])
            train_segmenter(net, images, (soft,), DMLCELoss(softmax=True), **fit)
        elif student in ABLATION:
            kd = KDLoss(softmax=True, teacher_terms=ABLATION[student])
            train_segmenter(net, images, (labels, teacher_maps["kd"]), kd, **fit)
        else:
            train_segmenter(net, images, (labels, teacher_maps[student]), KDLoss(softmax=True), **fit)
        scores = _scores([_volume_probs(net, v) for v in val], val)
        ece_of = teacher_ece.get("kd" if student in ABLATION else student)
        rows.append({"layout": layout, "model": student, **scores, "teacher_ece": ece_of, "gain": None})
    hard_dice = next(r["dice"] for r in rows if r["model"] == "hard")
    for r in rows[1:]:
        r["gain"] = round(r["dice"] - hard_dice, 2)
    temperature = calibrators["kd_temperature"].temperature  # type: ignore[attr-defined]
    rows[0]["temperature"] = round(float(temperature), 3)
    set_determinism(None)
    return rows


def _figure(table: list[dict[str, Any]], path: Path) -> None:
    from monai_dml.visualize.figures import _pyplot

    plt = _pyplot()
    layouts = sorted({r["layout"] for r in table})
    fig, axes = plt.subplots(1, 2 * len(layouts), figsize=(6 * len(layouts), 3.4), squeeze=False)
    for i, layout in enumerate(layouts):
        rows = [r for r in table if r["layout"] == layout]
        for j, m in enumerate(("dice", "ece")):
            ax = axes[0, 2 * i + j]
            ax.bar(range(len(rows)), [r[m] for r in rows], color="tab:green")
            ax.set_xticks(range(len(rows)), [r["model"] for r in rows], rotation=45, fontsize=7)
            ax.set_title(f"{layout}: {'Dice' if m == 'dice' else 'ECE'} (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(quick: bool = False, output_dir: str | Path = "results", seed: int = 0) -> dict[str, Any]:
    """
    Run the experiment and write ``<output_dir>/wang_kd.json`` and ``.png``.

    Returns:
        ``{"config", "table", "runtime_s"}``; ``table`` has per layout the teacher's row (with the fitted temperature)
        and one row per student: Dice and ECE (%), the ECE of the teacher maps it distilled from (validation fold),
        and its Dice gain over the hard-label student.
    """
    s = QUICK if quick else FULL
    results: dict[str, Any] = {"config": {"quick": quick, "seed": seed, **asdict(s)}}
    table: list[dict[str, Any]] = []
    with one_thread(), stopwatch(results), tempfile.TemporaryDirectory() as root:
        for layout in s.layouts:
            table += _layout(layout, s, root, seed)
    results["table"] = table
    out = Path(output_dir)
    write_results(results, out, NAME)
    _figure(table, out / f"{NAME}.png")
    return results
