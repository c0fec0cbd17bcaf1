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
Wang et al. (2023), Tables 2 and 6: hard vs soft training targets on QUBIQ, and SDL vs DML on the weighted soft
labels, on the synthetic QUBIQ layout (all seven sub-data sets D1-D7, raters calibrated to Table 1).

For every sub-data set and cross-validation fold a small UNet is trained with the paper's recipe (0.25 CE + 0.75 DML,
SGD, poly schedule) on each training target of :py:func:`monai_dml.bundle.label_targets` (majority, random,
uniform, weighted, STAPLE, label-smoothed majority), and on the weighted soft labels with SDL, DML1 and DML2. The
validation cases of all folds are pooled; the table holds Dice (hard prediction vs majority vote), BDice (vs the
rater mean) and ECE (vs majority vote) in percent, mean over the pooled cases and standard deviation over the fold
means, and the p-value of a paired two-sided Wilcoxon signed-rank test on the per-case scores against the
reference setting (majority for Table 2, DML1 for Table 6).

Run ``python -m monai_dml.experiments wang_qubiq [--quick]``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from monai.transforms import Randomizable
from monai.utils import set_determinism

from monai_dml.bundle import QUBIQ_TASKS, label_targets
from monai_dml.data import assign_folds
from monai_dml.data.qubiq import QUBIQ_TABLE1
from monai_dml.data.synthetic import synthesize_qubiq_case
from monai_dml.experiments.common import (
    one_thread,
    paired_test,
    predict_logits,
    stopwatch,
    train_segmenter,
    write_results,
)
from monai_dml.losses import DMLCELoss
from monai_dml.metrics import compute_binarized_dice, compute_ece, compute_soft_dice
from monai_dml.networks import build_network
from monai_dml.transforms import RaterFusiond, rater_dice_to_majority

__all__ = ["FULL", "QUICK", "QubiqSettings", "run"]

NAME = "wang_qubiq"
# (training target, DML variant): Table 2 trains every target with DML1; Table 6 adds SDL and DML2 on "weighted"
CONFIGS: tuple[tuple[str, str], ...] = (
    ("majority", "dml1"),
    ("random", "dml1"),
    ("uniform", "dml1"),
    ("weighted", "dml1"),
    ("staple", "dml1"),
    ("ls", "dml1"),
    ("weighted", "sdl"),
    ("weighted", "dml2"),
)
# cases per QUBIQ 2020 data set (Sect. 3.1)
PAPER_CASES = {"prostate": 55, "brain-growth": 39, "brain-tumor": 32, "kidney": 24}
METRICS = ("dice", "bdice", "ece")


@dataclass(frozen=True)
class QubiqSettings:
    """
    One scale of the experiment.

    Attributes:
        sub_datasets: keys of Table 1 (``"D1"``-``"D7"``).
        configs: ``(target, variant)`` pairs to train.
        cases: cases per QUBIQ data set.
        image_size: in-plane size of the generated images.
        num_folds: cross-validation folds.
        epochs: training epochs per model.
        features: channels of the BasicUNet.
        batch_size: mini-batch size.
        learning_rate: initial SGD learning rate.
    """

    sub_datasets: tuple[str, ...]
    configs: tuple[tuple[str, str], ...]
    cases: dict[str, int]
    image_size: int
    num_folds: int
    epochs: int
    features: tuple[int, ...]
    batch_size: int = 8
    learning_rate: float = 0.01


FULL = QubiqSettings(
    sub_datasets=tuple(QUBIQ_TABLE1),
    configs=CONFIGS,
    cases=PAPER_CASES,
    image_size=64,
    num_folds=5,
    epochs=30,
    features=(8, 8, 16, 32, 64, 8),
    learning_rate=0.1,
)
# the sub-data set with the most rater disagreement (D5), where soft and hard targets differ most
QUICK = QubiqSettings(
    sub_datasets=("D5",),
    configs=(("majority", "dml1"), ("weighted", "dml1"), ("weighted", "sdl")),
    cases={"brain-tumor": 16},
    image_size=32,
    num_folds=2,
    epochs=30,
    features=(8, 8, 16, 32, 32, 8),
    learning_rate=0.1,
)


def _sub_datasets() -> dict[str, tuple[str, int]]:
    """Table 1's sub-data sets as ``{key: (QUBIQ folder, task)}``, checked against the bundle's task table."""
    subs = {key: (dataset, task) for key, (dataset, task, _, _) in QUBIQ_TABLE1.items()}
    assert sorted(subs.values()) == sorted((d, t) for d, n in QUBIQ_TASKS.items() for t in range(1, n + 1))
    return subs


def _load_cases(dataset: str, task: int, num_cases: int, size: int, seed: int) -> list[dict[str, Any]]:
    """Generated cases as bundle-style dictionaries: channel-first ``image`` in [0, 1], ``raters``, ``label``."""
    majority = RaterFusiond("raters", output_key="label", method="majority")
    items = []
    for index in range(num_cases):
        image, raters = synthesize_qubiq_case(dataset, index, size=size, seed=seed)
        img = torch.as_tensor(image, dtype=torch.float32)
        img = img.permute(2, 0, 1) if img.ndim == 3 else img[None]
        low = img.amin(dim=(1, 2), keepdim=True)
        high = img.amax(dim=(1, 2), keepdim=True)
        item: dict[Hashable, Any] = {
            "image": (img - low) / (high - low).clamp_min(1e-6),
            "raters": torch.as_tensor(raters[task]).float(),
        }
        item = majority(item)  # the reference label of the bundles (``label`` before ``label_targets``)
        item["mean"] = RaterFusiond("raters", output_key="mean", method="uniform")(item)["mean"]
        item["case"] = f"case{index + 1:02d}"
        items.append({str(k): torch.as_tensor(v) if k != "case" else v for k, v in item.items()})
    return items


def _targets(items: list[dict[str, Any]], target: str, seed: int) -> Any:
    """The training labels of ``target`` through the bundles' label-mode table; a function of the epoch if random."""
    transform = label_targets(target)
    if isinstance(transform, Randomizable):
        transform.set_random_state(seed)

        def draw(epoch: int) -> tuple[torch.Tensor]:
            return (
                torch.stack([torch.as_tensor(transform(cast(dict[Hashable, Any], dict(it)))["label"]) for it in items]),
            )

        return draw
    return (torch.stack([torch.as_tensor(transform(cast(dict[Hashable, Any], dict(it)))["label"]) for it in items]),)


def _evaluate(probs: torch.Tensor, items: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per-case Dice (hard prediction vs majority), BDice (vs rater mean) and ECE (vs majority), in percent."""
    majority = torch.stack([it["label"] for it in items])
    mean = torch.stack([it["mean"] for it in items])
    dice = torch.nan_to_num(compute_soft_dice((probs > 0.5).float(), majority), nan=1.0)  # both empty: perfect
    bdice = compute_binarized_dice(probs, mean)
    ece = compute_ece(probs, majority, percent=True)
    return {
        "dice": (100 * dice[:, 0]).tolist(),
        "bdice": (100 * bdice[:, 0]).tolist(),
        "ece": ece[:, 0].tolist(),
    }


def _train_and_validate(
    items: list[dict[str, Any]], folds: dict[str, int], target: str, variant: str, s: QubiqSettings, seed: int
) -> dict[str, Any]:
    """k-fold cross-validation of one setting: per-case scores of the pooled validation cases, per-fold means."""
    scores: dict[str, list[float]] = {m: [] for m in METRICS}
    fold_means: dict[str, list[float]] = {m: [] for m in METRICS}
    in_channels = items[0]["image"].shape[0]
    for fold in range(s.num_folds):
        train = [it for it in items if folds[it["case"]] != fold]
        val = [it for it in items if folds[it["case"]] == fold]
        set_determinism(seed + fold)
        net = build_network("basicunet", 2, in_channels, 1, features=s.features)
        loss = DMLCELoss(sigmoid=True, variant=variant)
        images = torch.stack([it["image"] for it in train])
        train_segmenter(
            net,
            images,
            _targets(train, target, seed + fold),
            loss,
            s.epochs,
            batch_size=s.batch_size,
            learning_rate=s.learning_rate,
            seed=seed + fold,
        )
        probs = torch.sigmoid(predict_logits(net, torch.stack([it["image"] for it in val])))
        case_scores = _evaluate(probs, val)
        for m in METRICS:
            scores[m] += case_scores[m]
            fold_means[m].append(float(np.mean(case_scores[m])))
    set_determinism(None)
    return {"scores": scores, "fold_means": fold_means}


def _row(
    sub: str, target: str, variant: str, result: dict[str, Any], reference: dict[str, Any] | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"sub_dataset": sub, "target": target, "loss": variant}
    for m in METRICS:
        row[m] = round(float(np.mean(result["scores"][m])), 2)
        row[f"{m}_std"] = round(float(np.std(result["fold_means"][m])), 2)
        if reference is not None:
            row[f"{m}_p"] = round(paired_test(result["scores"][m], reference["scores"][m]), 4)
    return row


def _reference(target: str, variant: str) -> tuple[str, str] | None:
    """The setting a row is tested against: majority (Table 2) or weighted DML1 (Table 6); None for those two."""
    if variant != "dml1":
        return ("weighted", "dml1")
    return None if target == "majority" else ("majority", "dml1")


def _figure(table: list[dict[str, Any]], path: Path) -> None:
    from monai_dml.visualize.figures import _pyplot

    plt = _pyplot()
    rows = [r for r in table if r["sub_dataset"] == "All"]
    labels = [f"{r['target']}\n{r['loss']}" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, m, title in zip(axes, METRICS, ("Dice vs majority (%)", "BDice (%)", "ECE vs majority (%)"), strict=True):
        ax.bar(range(len(rows)), [r[m] for r in rows], yerr=[r[f"{m}_std"] for r in rows], color="tab:blue")
        ax.set_xticks(range(len(rows)), labels, fontsize=7)
        ax.set_title(title)
        if m != "ece":
            low = min(r[m] for r in rows)
            ax.set_ylim(max(0.0, low - 5), 100)
    fig.suptitle("Wang et al. Tables 2/6 on synthetic QUBIQ (all sub-data sets pooled)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(quick: bool = False, output_dir: str | Path = "results", seed: int = 0) -> dict[str, Any]:
    """
    Run the experiment and write ``<output_dir>/wang_qubiq.json`` and ``.png``.

    Args:
        quick: the small configuration (one sub-data set, three settings, 32 x 32, two folds).
        output_dir: folder of the results.
        seed: seed of the data, the folds' initialisations and the batch orders.

    Returns:
        ``{"config", "agreement", "table", "runtime_s", "timing"}``: ``table`` has one row per sub-data set and
        setting plus the ``"All"`` rows (every case of every sub-data set pooled).
    """
    s = QUICK if quick else FULL
    with one_thread():  # small convolutions: one thread is faster than two competing ones
        return _run(s, quick, Path(output_dir), seed)


def _run(s: QubiqSettings, quick: bool, out: Path, seed: int) -> dict[str, Any]:
    subs = _sub_datasets()
    results: dict[str, Any] = {"config": {"quick": quick, "seed": seed, **asdict(s)}}
    table: list[dict[str, Any]] = []
    agreement: dict[str, Any] = {}
    timing: dict[str, float] = {}
    pooled: dict[tuple[str, str], dict[str, Any]] = {}
    with stopwatch(results):
        for key in s.sub_datasets:
            dataset, task = subs[key]
            items = _load_cases(dataset, task, s.cases[dataset], s.image_size, seed)
            dice = [float(rater_dice_to_majority(it["raters"]).mean()) for it in items]
            agreement[key] = {"generated": round(100 * float(np.mean(dice)), 2), "table1": QUBIQ_TABLE1[key][3]}
            folds = assign_folds([it["case"] for it in items], s.num_folds)
            per_config: dict[tuple[str, str], dict[str, Any]] = {}
            for target, variant in s.configs:
                with stopwatch(timing, f"{key}/{target}/{variant}"):
                    per_config[(target, variant)] = _train_and_validate(items, folds, target, variant, s, seed)
                for part in ("scores", "fold_means"):
                    entry = pooled.setdefault((target, variant), {"scores": {}, "fold_means": {}})
                    for m in METRICS:
                        entry[part].setdefault(m, []).extend(per_config[(target, variant)][part][m])
            for (target, variant), result in per_config.items():
                ref = _reference(target, variant)
                table.append(_row(key, target, variant, result, per_config.get(ref) if ref else None))
        for (target, variant), result in pooled.items():
            # "All": the mean over every pooled case; std over every (sub-data set, fold) mean
            ref = _reference(target, variant)
            table.append(_row("All", target, variant, result, pooled.get(ref) if ref else None))
    results.update({"agreement": agreement, "table": table, "timing": timing})
    write_results(results, out, NAME)
    _figure(table, out / f"{NAME}.png")
    return results


def summary(table: Sequence[dict[str, Any]], sub_dataset: str = "All") -> dict[tuple[str, str], dict[str, float]]:
    """``{(target, loss): {metric: value}}`` of the rows of one sub-data set (for tests and the docs)."""
    return {(r["target"], r["loss"]): {m: r[m] for m in METRICS} for r in table if r["sub_dataset"] == sub_dataset}
