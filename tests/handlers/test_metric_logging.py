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
"""The package's metrics plug into MONAI's ignite handlers unchanged: console, TensorBoard-ready engine state, and a
per-case CSV through ``MetricsSaver`` — the wiring every bundle uses.

Every expected number is computed here from first principles in numpy (or by MONAI's own ``compute_dice``), never by
the package."""

from __future__ import annotations

import csv
import os
import tempfile
import unittest
from unittest import mock

import numpy as np
import torch
from ignite.engine import Engine
from matplotlib.image import imread
from monai.handlers import IgniteMetricHandler, MetricsSaver, from_engine
from monai.metrics import compute_dice

from monai_dml.handlers import ReliabilityDiagramSaver, reliability as reliability_module
from monai_dml.metrics import BinarizedDiceMetric, ECEMetric, SoftDiceMetric, VolumeBiasMetric
from monai_dml.visualize import plot_reliability_diagram

NUM_BINS = 10


# -- reference implementations, one binary foreground map (H, W) per case ------------------------------------------
def _np_dice(x: np.ndarray, y: np.ndarray) -> float:
    return 2.0 * np.minimum(x, y).sum() / (x.sum() + y.sum())


def _np_bdice(x: np.ndarray, y: np.ndarray) -> float:
    scores = []
    for t in np.arange(1, 10) / 10:
        a, b = (x > t).astype(np.float64), (y > t).astype(np.float64)
        scores.append(1.0 if a.sum() + b.sum() == 0 else _np_dice(a, b))
    return float(np.mean(scores))


def _np_volume_bias(x: np.ndarray, y: np.ndarray) -> float:
    return (x.sum() - y.sum()) / y.sum()


def _np_top_label(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and accuracy of the two classes [1 - p, p] per voxel (foreground predicted where p > 0.5)."""
    fg = p > 0.5
    return np.where(fg, p, 1 - p).ravel(), np.where(fg, y, 1 - y).ravel()


def _np_bins(conf: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts, confidence sums and accuracy sums of the right-closed bins (0, 1/M], ..., ((M-1)/M, 1]."""
    index = np.clip(np.ceil(conf * NUM_BINS).astype(int) - 1, 0, NUM_BINS - 1)
    counts = np.bincount(index, minlength=NUM_BINS).astype(np.float64)
    return counts, np.bincount(index, conf, NUM_BINS), np.bincount(index, acc, NUM_BINS)


def _np_ece(p: np.ndarray, y: np.ndarray) -> float:
    counts, sum_conf, sum_acc = _np_bins(*_np_top_label(p, y))
    return float(np.abs(sum_acc - sum_conf).sum() / counts.sum())


def _read_csv(path: str) -> list[list[str]]:
    with open(path) as f:
        return list(csv.reader(f, delimiter=","))


class TestMetricLogging(unittest.TestCase):
    def test_evaluator_logs_metrics_and_per_case_csv(self):
        # values k / 10 + 0.05: never on a BDice threshold or an ECE bin edge, never a tie at 0.5
        rng = np.random.default_rng(0)
        preds = (rng.integers(0, 10, (6, 4, 4)) / 10 + 0.05).astype(np.float32)
        labels = (rng.integers(0, 10, (6, 4, 4)) / 10 + 0.05).astype(np.float32)
        self.assertTrue(((labels > 0.5).sum(axis=(1, 2)) > 0).all())  # MONAI's Dice needs a reference foreground
        names = [f"case{i}" for i in range(6)]
        batches = [
            {
                "pred": torch.from_numpy(preds[2 * i : 2 * i + 2, None]),
                "label": torch.from_numpy(labels[2 * i : 2 * i + 2, None]),
                "image_meta_dict": {"filename_or_obj": names[2 * i : 2 * i + 2]},
            }
            for i in range(3)
        ]
        p64, y64 = preds.astype(np.float64), labels.astype(np.float64)
        hard_p, hard_y = torch.from_numpy(preds > 0.5).float(), torch.from_numpy(labels > 0.5).float()
        expected = {
            "soft_dice": [_np_dice(p, y) for p, y in zip(p64, y64, strict=True)],
            "hard_dice": compute_dice(hard_p[:, None], hard_y[:, None]).flatten().tolist(),  # MONAI's own Dice
            "bdice": [_np_bdice(p, y) for p, y in zip(p64, y64, strict=True)],
            "volume_bias": [_np_volume_bias(p, y) for p, y in zip(p64, y64, strict=True)],
            "ece": [_np_ece(p, y) for p, y in zip(p64, y64, strict=True)],
        }
        # the per-case values are not all alike, so a wrong case order or a constant would show
        self.assertTrue(all(np.ptp(v) > 0.05 for v in expected.values()))
        metrics = {
            "soft_dice": SoftDiceMetric(),
            "hard_dice": SoftDiceMetric(threshold=0.5),
            "bdice": BinarizedDiceMetric(),
            "volume_bias": VolumeBiasMetric(),
            "ece": ECEMetric(num_bins=NUM_BINS),
        }
        engine = Engine(lambda e, batch: batch)
        for name, metric in metrics.items():
            IgniteMetricHandler(
                metric_fn=metric, output_transform=from_engine(["pred", "label"]), save_details=True
            ).attach(engine, name)
        with tempfile.TemporaryDirectory() as tmp:
            MetricsSaver(
                save_dir=tmp, metrics="*", metric_details="*", batch_transform=lambda b: b["image_meta_dict"]
            ).attach(engine)
            engine.run(batches, max_epochs=1)
            summary = {row[0]: float(row[1]) for row in _read_csv(os.path.join(tmp, "metrics.csv"))}
            raw = {name: _read_csv(os.path.join(tmp, f"{name}_raw.csv")) for name in metrics}
        self.assertEqual(set(summary), set(metrics))
        for name, values in expected.items():
            with self.subTest(metric=name):
                self.assertAlmostEqual(engine.state.metrics[name], float(np.mean(values)), places=5)
                self.assertAlmostEqual(summary[name], float(np.mean(values)), places=5)
                rows = raw[name]
                self.assertEqual(rows[0], ["filename", "class0", "mean"])
                self.assertEqual([r[0] for r in rows[1:]], names)  # one row per case, in order
                np.testing.assert_allclose([float(r[1]) for r in rows[1:]], values, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose([float(r[2]) for r in rows[1:]], values, rtol=1e-5, atol=1e-6)

    def test_reliability_diagram_saver(self):
        # dyadic probabilities (exact in float32): confidences 0.875, 0.625 and 0.96875 fill bins 8, 6 and 9
        rng = np.random.default_rng(1)
        levels = np.array([0.125, 0.375, 0.625, 0.875, 0.96875], dtype=np.float32)
        preds = levels[rng.integers(0, len(levels), (6, 8, 8))]
        labels = (rng.random((6, 8, 8)) < 0.7).astype(np.float32)  # right 70 % of the time: overconfident
        batches = [
            {
                "pred": torch.from_numpy(preds[2 * i : 2 * i + 2, None]),
                "label": torch.from_numpy(labels[2 * i : 2 * i + 2, None]),
            }
            for i in range(3)
        ]
        counts, sum_conf, sum_acc = _np_bins(*_np_top_label(preds.astype(np.float64), labels.astype(np.float64)))
        self.assertEqual(np.flatnonzero(counts).tolist(), [6, 8, 9])
        filled = counts > 0
        conf = np.where(filled, sum_conf / np.maximum(counts, 1), np.nan)
        acc = np.where(filled, sum_acc / np.maximum(counts, 1), np.nan)
        ece = float(np.abs(sum_acc - sum_conf).sum() / counts.sum())
        titles = []

        def plot_and_record(*args, **kwargs):
            fig = plot_reliability_diagram(*args, **kwargs)
            titles.append(fig.axes[0].get_title())
            return fig

        engine = Engine(lambda e, batch: batch)
        with (
            tempfile.TemporaryDirectory() as tmp,
            mock.patch.object(reliability_module, "plot_reliability_diagram", side_effect=plot_and_record) as plot,
        ):
            saver = ReliabilityDiagramSaver(save_dir=tmp, filename="rel_{epoch}.png", num_bins=NUM_BINS)
            saver.attach(engine)
            engine.run(batches, max_epochs=1)
            self.assertEqual(os.listdir(tmp), ["rel_1.png"])
            written = imread(os.path.join(tmp, "rel_1.png"))
            # the same diagram drawn directly from the bins computed here
            reference = os.path.join(tmp, "reference.png")
            plot_reliability_diagram(conf, acc, counts, path=reference)
            expected_png = imread(reference)
        self.assertEqual(plot.call_count, 1)
        got_conf, got_acc, got_counts = (np.asarray(a, dtype=np.float64) for a in plot.call_args.args[:3])
        np.testing.assert_array_equal(got_counts, counts)
        np.testing.assert_allclose(got_conf[filled], conf[filled], rtol=1e-12)
        np.testing.assert_allclose(got_acc[filled], acc[filled], rtol=1e-12)
        self.assertEqual(titles, [f"Reliability diagram\nECE = {100 * ece:.2f} %"])
        self.assertGreater(ece, 0.05)
        np.testing.assert_array_equal(written, expected_png)


if __name__ == "__main__":
    unittest.main()
