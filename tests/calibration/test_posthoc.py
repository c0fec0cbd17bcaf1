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

import unittest

import numpy as np
import torch
from monai.data import MetaTensor
from parameterized import parameterized

from monai_dml.calibration import KDECalibrator, TemperatureScaling, calibration_report
from monai_dml.metrics.calibration import compute_ece


def _over_confident(batch: int, classes: int, voxels: int, sharpen: float, seed: int):
    """True probabilities ``p``, labels drawn from ``p``, and the reported ``softmax(sharpen * logits)``."""
    return _over_confident_logits(batch, classes, voxels, sharpen, seed)[:3]


def _over_confident_logits(batch: int, classes: int, voxels: int, sharpen: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    if classes == 1:
        p = torch.rand(batch, 1, voxels, generator=g).clamp(1e-4, 1 - 1e-4)
        y = torch.bernoulli(p, generator=g)
        logits = sharpen * torch.logit(p)
        return p, y, torch.sigmoid(logits), logits
    logits = 1.5 * torch.randn(batch, classes, voxels, generator=g)
    p = torch.softmax(logits, dim=1)
    labels = torch.multinomial(p.movedim(1, -1).reshape(-1, classes), 1, generator=g).view(batch, voxels)
    y = torch.nn.functional.one_hot(labels, classes).movedim(-1, 1).float()
    return p, y, torch.softmax(sharpen * logits, dim=1), sharpen * logits


class TestTemperatureScaling(unittest.TestCase):
    @parameterized.expand([[1, 3.0], [3, 2.5], [3, 0.6]])
    def test_recovers_temperature(self, classes, sharpen):
        _, y, reported, logits = _over_confident_logits(1, classes, 30_000, sharpen, seed=0)
        if classes == 1:  # float32 sigmoids saturate to exactly 1.0 (logit > 16.6): read as log(eps), not log(0)
            self.assertTrue(bool((reported == 1).any()))
        ts = TemperatureScaling().fit(reported, y)
        self.assertAlmostEqual(ts.temperature, sharpen, delta=0.05 * sharpen)
        # fitting on the logits gives the same temperature
        from_logits = TemperatureScaling().fit(logits, y, logits=True).temperature
        self.assertAlmostEqual(from_logits, sharpen, delta=0.05 * sharpen)
        self.assertAlmostEqual(from_logits, ts.temperature, delta=0.01 * sharpen)  # float32 saturation aside

    def test_map(self):
        ts = TemperatureScaling()
        ts.temperature, ts.num_channels = 2.0, 2
        p = torch.tensor([[[0.25, 0.5]], [[0.75, 0.5]]])  # (C, H, W) = (2, 1, 2)
        expected = [[[0.5 / (0.5 + 0.75**0.5), 0.5]], [[0.75**0.5 / (0.5 + 0.75**0.5), 0.5]]]
        np.testing.assert_allclose(np.asarray(ts(p)), expected, rtol=1e-5)

    def test_subsampled_fit(self):
        _, y, reported = _over_confident(2, 3, 20_000, 2.0, seed=1)
        ts = TemperatureScaling(max_fit_voxels=10_000, seed=3).fit(reported, y)
        self.assertAlmostEqual(ts.temperature, 2.0, delta=0.2)

    def test_warnings(self):
        # always right at 60%: the NLL falls as T -> 0, the optimum is the lower bound
        p = torch.tensor([[[0.6] * 50, [0.4] * 50]])
        y = torch.tensor([[[1.0] * 50, [0.0] * 50]])
        with self.assertWarnsRegex(UserWarning, "edge of bounds"):
            TemperatureScaling().fit(p, y)

    def test_errors(self):
        for bounds in ((0.0, 1.0), (2.0, 1.0), (1.0, float("inf"))):
            with self.assertRaisesRegex(ValueError, "bounds"):
                TemperatureScaling(bounds=bounds)
        with self.assertRaisesRegex(ValueError, "max_fit_voxels"):
            TemperatureScaling(max_fit_voxels=0)
        with self.assertRaisesRegex(RuntimeError, "fit"):
            TemperatureScaling()(torch.full((2, 4), 0.5))
        with self.assertRaisesRegex(ValueError, "same shape"):
            TemperatureScaling().fit(torch.full((1, 2, 4), 0.5), torch.zeros(1, 2, 5))
        with self.assertRaisesRegex(ValueError, "channels must sum to 1"):
            TemperatureScaling().fit(torch.full((1, 2, 4), 0.3), torch.zeros(1, 2, 4))
        with self.assertRaisesRegex(ValueError, "logits"):
            TemperatureScaling().fit(torch.full((1, 2, 4), float("nan")), torch.zeros(1, 2, 4), logits=True)
        with self.assertRaisesRegex(ValueError, "y contains NaN"):
            TemperatureScaling().fit(torch.zeros(1, 2, 4), torch.full((1, 2, 4), float("nan")), logits=True)


class TestKDECalibrator(unittest.TestCase):
    def test_recovers_calibration_curve(self):
        # the model says f, the truth is f^2: no temperature fixes this, the kernel estimate does
        g = torch.Generator().manual_seed(2)
        f = torch.rand(1, 1, 8000, generator=g)
        y = torch.bernoulli(f * f, generator=g)
        kde = KDECalibrator(max_fit_voxels=4000).fit(f, y)
        grid = torch.linspace(0.2, 0.8, 7).view(1, 1, 7)
        np.testing.assert_allclose(kde(grid, batched=True).numpy(), (grid**2).numpy(), atol=0.05)
        self.assertEqual(tuple(kde.fit_probs.shape), (4000, 1))

    def test_layouts_and_types(self):
        _, y, reported = _over_confident(2, 3, 64, 2.0, seed=3)
        kde = KDECalibrator(max_fit_voxels=100).fit(reported, y)
        batched = reported.view(2, 3, 8, 8)
        out = kde(batched)
        self.assertEqual(tuple(out.shape), (2, 3, 8, 8))
        self.assertEqual(out.dtype, torch.float32)
        self.assertTrue(bool(((out >= 0) & (out <= 1)).all()))
        np.testing.assert_allclose(out.sum(dim=1).numpy(), 1.0, rtol=1e-5)
        # one case without the batch axis, NumPy in and out, MetaTensor kept
        single = kde(batched[1])
        np.testing.assert_allclose(single.numpy(), out[1].numpy(), rtol=1e-6)
        self.assertIsInstance(kde(batched[1].numpy()), np.ndarray)
        meta = MetaTensor(batched[1], affine=torch.diag(torch.tensor([2.0, 2.0, 1.0, 1.0])))
        out_meta = kde(meta)
        self.assertIsInstance(out_meta, MetaTensor)
        np.testing.assert_allclose(out_meta.affine.numpy(), meta.affine.numpy())
        # (3, 3, 8): batch or channel first? Ambiguous unless told
        with self.assertRaisesRegex(ValueError, "batched"):
            kde(torch.full((3, 3, 8), 1 / 3))
        self.assertEqual(tuple(kde(torch.full((3, 3, 8), 1 / 3), batched=False).shape), (3, 3, 8))
        with self.assertRaisesRegex(ValueError, "C=3"):
            kde(torch.full((2, 2, 8), 0.5))

    def test_errors(self):
        for h in (0.0, -1.0, float("nan")):
            with self.assertRaisesRegex(ValueError, "bandwidth"):
                KDECalibrator(bandwidth=h)
        with self.assertRaisesRegex(ValueError, "max_fit_voxels"):
            KDECalibrator(max_fit_voxels=0)
        with self.assertRaisesRegex(ValueError, "dirichlet"):
            KDECalibrator(kernel="gauss")
        with self.assertRaisesRegex(RuntimeError, "fit"):
            KDECalibrator()(torch.full((1, 4), 0.5))
        with self.assertRaisesRegex(ValueError, r"y must hold probabilities in \[0, 1\]"):
            KDECalibrator().fit(torch.full((1, 1, 4), 0.5), torch.full((1, 1, 4), 2.0))
        kde = KDECalibrator().fit(torch.full((1, 1, 4), 0.5), torch.ones(1, 1, 4))
        with self.assertRaisesRegex(ValueError, r"probs must hold probabilities in \[0, 1\]"):
            kde(torch.full((1, 4), 1.5))


class TestHeldOutECE(unittest.TestCase):
    @parameterized.expand([[1], [3]])
    def test_both_calibrators_lower_ece(self, classes):
        # over-confident: the true logits sharpened 2.5 times; fit on case 0, evaluate on case 1
        p, y, reported = _over_confident(2, classes, 20_000, 2.5, seed=4)
        for calibrator in (TemperatureScaling(), KDECalibrator()):
            report = calibration_report(calibrator.fit(reported[:1], y[:1]), reported[1:], y[1:])
            self.assertEqual(set(report), {"ece_before", "ece_after", "case_ece_before", "case_ece_after"})
            self.assertGreater(report["ece_before"], 0.1)
            self.assertLess(report["ece_after"], 0.5 * report["ece_before"])
            self.assertAlmostEqual(report["ece_before"], float(compute_ece(reported[1:], y[1:])), places=5)
        # the true probabilities are calibrated up to sampling noise: a floor for both
        self.assertLess(float(compute_ece(p[1:], y[1:])), 0.02)

    def test_kde_fixes_what_temperature_cannot(self):
        # E[y | f] = f^2 with f uniform; top-label ECE is blind to it (f and 1 - f cancel), the classwise ECE is not
        g = torch.Generator().manual_seed(5)
        f = torch.rand(2, 1, 20_000, generator=g)
        y = torch.bernoulli(f * f, generator=g)
        ts = calibration_report(TemperatureScaling().fit(f[:1], y[:1]), f[1:], y[1:], mode="classwise")
        kde = calibration_report(KDECalibrator().fit(f[:1], y[:1]), f[1:], y[1:], mode="classwise")
        self.assertGreater(kde["ece_before"], 0.1)
        self.assertLess(kde["ece_after"], 0.03)
        self.assertGreater(ts["ece_after"], 0.1)


if __name__ == "__main__":
    unittest.main()
