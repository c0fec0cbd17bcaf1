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

from __future__ import annotations

import csv
import os
import tempfile
import unittest

import numpy as np
import torch
from ignite.engine import Engine
from monai.handlers import IgniteMetricHandler, MetricsSaver, from_engine
from monai.metrics import CalibrationErrorMetric
from monai.metrics.calibration import calibration_binning
from parameterized import parameterized

from monai_dml.metrics.calibration import ECEMetric, calibration_bin_sums, compute_ece, ece_from_bin_sums
from monai_dml.metrics.kde import KDECalibrationErrorMetric


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, num_classes).movedim(-1, 1).float()


def _random_case(batch: int, classes: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(2 * torch.randn(batch, classes, size, size, generator=g), dim=1)
    return probs, _one_hot(torch.randint(0, classes, (batch, size, size), generator=g), classes)


TEST_CASES = [
    # shape: (1, 1, 4), binary: confidences 0.9, 0.9, 0.8 (background), 0.6; predicted fg, fg, bg, fg
    # accuracies 1, 0, 1, 1; 10 bins: (0.5, 0.6] {0.6: acc 1}, (0.7, 0.8] {0.8: acc 1}, (0.8, 0.9] {0.9, 0.9: acc 0.5}
    # ECE = (|1 - 0.6| + |1 - 0.8| + 2 * |0.5 - 0.9|) / 4 = (0.4 + 0.2 + 0.8) / 4
    [{}, torch.tensor([[[0.9, 0.9, 0.2, 0.6]]]), torch.tensor([[[1.0, 0.0, 0.0, 1.0]]]), [[0.35]]],
    # same, 2 bins: all in (0.5, 1]: |mean acc 0.75 - mean conf 0.8| = 0.05
    [{"num_bins": 2}, torch.tensor([[[0.9, 0.9, 0.2, 0.6]]]), torch.tensor([[[1.0, 0.0, 0.0, 1.0]]]), [[0.05]]],
    # classwise, one bin: |mean y - mean p| = |0.5 - 0.65|
    [
        {"num_bins": 1, "mode": "classwise"},
        torch.tensor([[[0.9, 0.9, 0.2, 0.6]]]),
        torch.tensor([[[1.0, 0.0, 0.0, 1.0]]]),
        [[0.15]],
    ],
    # shape: (1, 3, 2), constant over-confident [0.8, 0.1, 0.1]: predicted class 0, right half the time: |0.5 - 0.8|
    [{}, torch.tensor([[[0.8, 0.8], [0.1, 0.1], [0.1, 0.1]]]), _one_hot(torch.tensor([[0, 1]]), 3), [[0.3]]],
    # classwise: class 0 |0.5 - 0.8|, class 1 |0.5 - 0.1|, class 2 |0 - 0.1|
    [
        {"mode": "classwise"},
        torch.tensor([[[0.8, 0.8], [0.1, 0.1], [0.1, 0.1]]]),
        _one_hot(torch.tensor([[0, 1]]), 3),
        [[0.3, 0.4, 0.1]],
    ],
    # without background
    [
        {"mode": "classwise", "include_background": False},
        torch.tensor([[[0.8, 0.8], [0.1, 0.1], [0.1, 0.1]]]),
        _one_hot(torch.tensor([[0, 1]]), 3),
        [[0.4, 0.1]],
    ],
    # soft reference: accuracy is the mass on the predicted class (0.7 and 0.2): |0.45 - 0.8|
    [
        {},
        torch.tensor([[[0.8, 0.8], [0.1, 0.1], [0.1, 0.1]]]),
        torch.tensor([[[0.7, 0.2], [0.3, 0.8], [0.0, 0.0]]]),
        [[0.35]],
    ],
    # tie [0.5, 0.5]: the first class is predicted (like argmax), confidence 0.5, right: |1 - 0.5|
    [{}, torch.tensor([[[0.5], [0.5]]]), torch.tensor([[[1.0], [0.0]]]), [[0.5]]],
    # binary tie p = 0.5: background predicted, reference background: |1 - 0.5|
    [{}, torch.tensor([[[0.5]]]), torch.tensor([[[0.0]]]), [[0.5]]],
    # perfect and certain: 0
    [{}, _one_hot(torch.tensor([[0, 1, 2, 2]]), 3), _one_hot(torch.tensor([[0, 1, 2, 2]]), 3), [[0.0]]],
    # constant zero foreground probability: confidence 1 in background, wrong on one voxel of four
    [{}, torch.zeros(1, 1, 4), torch.tensor([[[1.0, 0.0, 0.0, 0.0]]]), [[0.25]]],
    # percent
    [{"percent": True}, torch.full((1, 1, 10), 0.9), (torch.arange(10) < 6).float().view(1, 1, 10), [[30.0]]],
    # shape: (2, 1, 2): one value per case
    [{}, torch.tensor([[[0.9, 0.9]], [[0.7, 0.7]]]), torch.tensor([[[1.0, 1.0]], [[1.0, 0.0]]]), [[0.1], [0.2]]],
]


class TestComputeECE(unittest.TestCase):
    @parameterized.expand(TEST_CASES)
    def test_values(self, kwargs, y_pred, y, expected):
        out = compute_ece(y_pred, y, **kwargs)
        self.assertEqual(out.dtype, torch.float32)
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-4, rtol=1e-4)
        metric = ECEMetric(**kwargs, reduction="none")
        np.testing.assert_allclose(metric(y_pred, y).numpy(), expected, atol=1e-4, rtol=1e-4)

    def test_right_closed_edges(self):
        # confidences exactly on the edges 0.2, 0.5 and 1.0 fall in the bin below, like MONAI's binning; 0 in the first
        y_pred = torch.tensor([[[0.2, 0.5, 1.0, 0.0]]])
        counts, sum_conf, _ = calibration_bin_sums(y_pred, torch.zeros_like(y_pred), num_bins=10, mode="classwise")
        self.assertEqual(counts[0, 0].tolist(), [1.0, 1.0, 0, 0, 1.0, 0, 0, 0, 0, 1.0])
        np.testing.assert_allclose(sum_conf[0, 0, [0, 1, 4, 9]].numpy(), [0.0, 0.2, 0.5, 1.0], rtol=1e-6)
        monai_counts = calibration_binning(y_pred, torch.zeros_like(y_pred), num_bins=10)[2]
        self.assertEqual(monai_counts.tolist(), counts.tolist())
        # float64 values written as k / M sit on their float64 edges
        y64 = torch.tensor([[[0.2, 0.5, 1.0, 0.0]]], dtype=torch.float64)
        counts64, _, _ = calibration_bin_sums(y64, torch.zeros_like(y64), num_bins=10, mode="classwise")
        self.assertEqual(counts64.tolist(), counts.tolist())

    @parameterized.expand([[10, True], [15, False], [20, True]])
    def test_classwise_matches_monai(self, num_bins, include_background):
        y_pred, y = _random_case(3, 4, 24, seed=num_bins)
        expected = CalibrationErrorMetric(
            num_bins=num_bins, include_background=include_background, metric_reduction="none"
        )(y_pred, y)
        out = compute_ece(y_pred, y, num_bins=num_bins, mode="classwise", include_background=include_background)
        self.assertEqual(tuple(out.shape), (3, 4 if include_background else 3))
        np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-5, rtol=1e-4)

    @parameterized.expand([[10, 3], [15, 2], [20, 1]])
    def test_top_label_matches_monai_on_confidence_and_correctness(self, num_bins, classes):
        # MONAI's per-channel ECE of (max probability, 1[argmax correct]) is the top-label ECE
        y_pred, y = _random_case(2, max(classes, 2), 24, seed=num_bins)
        if classes == 1:
            y_pred, y = y_pred[:, 1:], y[:, 1:]
            probs, ref = torch.cat([1 - y_pred, y_pred], 1), torch.cat([1 - y, y], 1)
        else:
            probs, ref = y_pred, y
        conf, pred = probs.max(dim=1, keepdim=True)
        expected = CalibrationErrorMetric(num_bins=num_bins, metric_reduction="none")(conf, ref.gather(1, pred))
        np.testing.assert_allclose(compute_ece(y_pred, y, num_bins=num_bins).numpy(), expected.numpy(), atol=1e-5)

    def test_calibrated_predictor(self):
        g = torch.Generator().manual_seed(0)
        p = torch.rand(1, 1, 400_000, generator=g)
        y = torch.bernoulli(p, generator=g)
        self.assertLess(float(compute_ece(p, y)), 0.01)
        self.assertLess(float(compute_ece(p, y, mode="classwise")), 0.01)
        # three classes, labels drawn from the predicted distribution
        probs = torch.softmax(2 * torch.randn(1, 3, 200_000, generator=g), dim=1)
        labels = torch.multinomial(probs[0].T, 1, generator=g).view(1, -1)
        ece = compute_ece(probs, _one_hot(labels, 3), mode="classwise")
        self.assertLess(float(ece.max()), 0.01)
        self.assertLess(float(compute_ece(probs, _one_hot(labels, 3))), 0.01)

    def test_empty_case_is_nan(self):
        out = compute_ece(torch.zeros(2, 3, 0), torch.zeros(2, 3, 0), mode="classwise")
        self.assertEqual(tuple(out.shape), (2, 3))
        self.assertTrue(bool(torch.isnan(out).all()))
        self.assertTrue(bool(torch.isnan(ece_from_bin_sums(*(torch.zeros(4),) * 3))))

    def test_float64_and_integer_reference(self):
        y_pred, y = _random_case(2, 3, 8, seed=1)
        out64 = compute_ece(y_pred.double(), y.long())
        self.assertEqual(out64.dtype, torch.float64)
        np.testing.assert_allclose(out64.numpy(), compute_ece(y_pred, y).numpy(), atol=1e-6)

    def test_errors(self):
        y_pred = torch.full((1, 2, 4), 0.5)
        with self.assertRaisesRegex(ValueError, "same shape"):
            compute_ece(y_pred, torch.zeros(1, 2, 5))
        with self.assertRaisesRegex(ValueError, r"\(B, C, spatial...\)"):
            compute_ece(torch.zeros(2, 4), torch.zeros(2, 4))
        with self.assertRaisesRegex(ValueError, "y_pred contains NaN"):
            compute_ece(torch.full((1, 2, 4), float("nan")), y_pred)
        with self.assertRaisesRegex(ValueError, "y contains NaN"):
            compute_ece(y_pred, torch.full((1, 2, 4), float("inf")))
        with self.assertRaisesRegex(ValueError, r"y_pred must hold probabilities in \[0, 1\]"):
            compute_ece(y_pred + 1, y_pred)
        with self.assertRaisesRegex(ValueError, r"y must hold probabilities in \[0, 1\]"):
            compute_ece(y_pred, y_pred - 1)
        for bins in (0, -3, 2.5, True):
            with self.assertRaisesRegex(ValueError, "num_bins"):
                compute_ece(y_pred, y_pred, num_bins=bins)
            with self.assertRaisesRegex(ValueError, "num_bins"):
                ECEMetric(num_bins=bins)
        with self.assertRaisesRegex(ValueError, "top_label"):
            compute_ece(y_pred, y_pred, mode="toplabel")
        with self.assertRaisesRegex(ValueError, "mean"):
            ECEMetric(reduction="meen")

    def test_top_label_without_background_warns(self):
        with self.assertWarnsRegex(UserWarning, "include_background"):
            ECEMetric(include_background=False)


class TestECEMetric(unittest.TestCase):
    def _batches(self):
        # cases of different sizes, three iterations
        g = torch.Generator().manual_seed(3)
        out = []
        for batch, size in ((2, 10), (1, 7), (3, 12)):
            probs = torch.softmax(3 * torch.randn(batch, 3, size, size, generator=g), dim=1)
            out.append((probs, _one_hot(torch.randint(0, 3, (batch, size, size), generator=g), 3)))
        return out

    @parameterized.expand([["top_label"], ["classwise"]])
    def test_accumulation_equals_one_pass(self, mode):
        batches = self._batches()
        metric = ECEMetric(mode=mode, reduction="none")
        for y_pred, y in batches:
            metric(y_pred, y)
        per_case = torch.cat([compute_ece(y_pred, y, mode=mode) for y_pred, y in batches])
        np.testing.assert_allclose(metric.aggregate().numpy(), per_case.numpy(), rtol=1e-6)
        np.testing.assert_allclose(
            metric.aggregate("mean_batch").numpy(), np.nanmean(per_case.numpy(), axis=0), rtol=1e-5, atol=1e-7
        )
        # pooled: every voxel of every case in one bag, as one case
        flat_pred = torch.cat([p.movedim(1, 0).reshape(3, -1) for p, _ in batches], dim=1)[None]
        flat_y = torch.cat([t.movedim(1, 0).reshape(3, -1) for _, t in batches], dim=1)[None]
        pooled = compute_ece(flat_pred, flat_y, mode=mode)[0]
        np.testing.assert_allclose(metric.aggregate_pooled().numpy(), pooled.numpy(), rtol=1e-6, atol=1e-7)
        # the same data in another batching (one case per call, as a list) gives the same pooled value
        other = ECEMetric(mode=mode)
        for y_pred, y in batches:
            for b in range(y_pred.shape[0]):
                other([y_pred[b]], [y[b]])
        np.testing.assert_allclose(other.aggregate_pooled().numpy(), metric.aggregate_pooled().numpy(), rtol=1e-12)
        counts, _, _ = other.pooled_bin_sums()
        self.assertEqual(float(counts.sum()), float(flat_pred.shape[-1]) * counts.shape[0])

    def test_get_not_nans_and_percent(self):
        metric = ECEMetric(get_not_nans=True, percent=True)
        metric(torch.full((1, 1, 10), 0.9), (torch.arange(10) < 6).float().view(1, 1, 10))
        metric(torch.zeros(1, 1, 0), torch.zeros(1, 1, 0))  # an empty case: NaN, skipped by the reduction
        value, not_nans = metric.aggregate()
        np.testing.assert_allclose(value.numpy(), [30.0], rtol=1e-5)
        self.assertEqual(float(not_nans), 1.0)
        np.testing.assert_allclose(metric.aggregate_pooled().numpy(), [30.0], rtol=1e-5)

    def test_reset_and_empty(self):
        metric = ECEMetric()
        with self.assertRaisesRegex(ValueError, "nothing to aggregate"):
            metric.aggregate()
        metric(torch.full((1, 1, 4), 0.9), torch.ones(1, 1, 4))
        metric.reset()
        with self.assertRaisesRegex(ValueError, "nothing to aggregate"):
            metric.aggregate_pooled()
        with self.assertRaisesRegex(ValueError, "reference"):
            metric(torch.full((1, 1, 4), 0.9))

    def test_ignite_handlers_log_per_case_values(self):
        # MONAI's handlers see the per-case ECEs as the metric details (the bin sums stay inside the metric)
        g = torch.Generator().manual_seed(4)
        batches = []
        for i in range(3):
            probs = torch.softmax(3 * torch.randn(2, 3, 8, 8, generator=g), dim=1)
            label = _one_hot(torch.randint(0, 3, (2, 8, 8), generator=g), 3)
            meta = {"filename_or_obj": [f"case{2 * i}", f"case{2 * i + 1}"]}
            batches.append({"pred": probs, "label": label, "image_meta_dict": meta})
        engine = Engine(lambda e, batch: batch)
        metrics = {
            "ece": ECEMetric(),
            "ece_classwise": ECEMetric(mode="classwise"),
            "kde_ece": KDECalibrationErrorMetric(),
        }
        for name, metric in metrics.items():
            handler = IgniteMetricHandler(metric, output_transform=from_engine(["pred", "label"]), save_details=True)
            handler.attach(engine, name)
        with tempfile.TemporaryDirectory() as tmp:
            saver = MetricsSaver(tmp, metrics="*", metric_details="*", batch_transform=lambda b: b["image_meta_dict"])
            saver.attach(engine)
            engine.run(batches, max_epochs=1)
            raw = {}
            for name in metrics:
                with open(os.path.join(tmp, f"{name}_raw.csv")) as f:
                    rows = list(csv.reader(f, delimiter=","))
                self.assertEqual(len(rows), 1 + 6)  # header + one row per case
                self.assertEqual([r[0] for r in rows[1:]], [f"case{i}" for i in range(6)])
                raw[name] = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
        # top-label ECE per case from first principles: confidence max_c p_c, accuracy 1[argmax p = label],
        # right-closed bins ((m - 1) / 10, m / 10]
        probs = torch.cat([b["pred"] for b in batches]).double().flatten(2).numpy()
        onehot = torch.cat([b["label"] for b in batches]).double().flatten(2).numpy()
        expected = []
        for p, y in zip(probs, onehot, strict=True):
            conf, acc = p.max(axis=0), y[p.argmax(axis=0), np.arange(p.shape[1])]
            index = np.clip(np.ceil(conf * 10).astype(int) - 1, 0, 9)
            gap = np.bincount(index, acc, 10) - np.bincount(index, conf, 10)
            expected.append(np.abs(gap).sum() / len(conf))
        np.testing.assert_allclose(raw["ece"][:, 0], expected, rtol=1e-5, atol=1e-6)
        # class-wise: MONAI's own CalibrationErrorMetric, per case and class
        monai_ece = CalibrationErrorMetric(num_bins=10, include_background=True, metric_reduction="none")
        for b in batches:
            monai_ece(b["pred"], b["label"])
        np.testing.assert_allclose(raw["ece_classwise"][:, :3], monai_ece.get_buffer().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(raw["ece_classwise"][:, 3], raw["ece_classwise"][:, :3].mean(1), rtol=1e-5)
        per_case = torch.cat([compute_ece(b["pred"], b["label"]) for b in batches])
        self.assertAlmostEqual(engine.state.metrics["ece"], float(per_case.mean()), places=5)
        self.assertEqual(tuple(metrics["ece_classwise"].get_buffer().shape), (6, 3))


if __name__ == "__main__":
    unittest.main()
