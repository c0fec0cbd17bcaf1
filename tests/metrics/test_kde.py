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
from unittest import mock

import numpy as np
import torch
from parameterized import parameterized
from scipy import stats

from monai_dml.metrics import kde
from monai_dml.metrics.kde import (
    KDECalibrationErrorMetric,
    compute_kde_calibration_error,
    dirichlet_log_kernel,
    kde_conditional_expectation,
)


def _simplex(n: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(n, k, generator=g, dtype=torch.float64), dim=1)


def _binary_data(n: int, seed: int, curve=lambda f: f * f) -> tuple[torch.Tensor, torch.Tensor]:
    """``f ~ U(0, 1)`` and ``y ~ Bernoulli(curve(f))``, as ``(1, 1, n)`` maps."""
    g = torch.Generator().manual_seed(seed)
    f = torch.rand(1, 1, n, generator=g, dtype=torch.float64)
    return f, torch.bernoulli(curve(f), generator=g)


TEST_CASES = [
    # shape: (2, 1): leave-one-out with two points: each point's estimate is the other point's label
    [{"leave_one_out": True}, [[0.3], [0.6]], [[0.3], [0.6]], [0, 1], [[1.0], [0.0]]],
    # one fitting point: its label everywhere
    [{}, [[0.1], [0.9]], [[0.4]], [1], [[1.0], [1.0]]],
    # soft labels pass through for identical fitting points
    [{}, [[0.5]], [[0.2], [0.2]], [[0.3], [0.5]], [[0.4]]],
    # three classes, identical fitting points: the mean label
    [{}, [[0.2, 0.3, 0.5]], [[0.1, 0.1, 0.8]] * 2, [0, 2], [[0.5, 0.0, 0.5]]],
]


class TestKernel(unittest.TestCase):
    def test_dirichlet_matches_scipy(self):
        z, f = _simplex(4, 3, 0), _simplex(5, 3, 1)
        for h in (0.5, 0.05):
            expected = [
                [stats.dirichlet.logpdf(z[j].numpy(), (f[i] / h + 1).numpy()) for i in range(5)] for j in range(4)
            ]
            np.testing.assert_allclose(dirichlet_log_kernel(z, f, h).numpy(), expected, rtol=1e-10)

    def test_beta_matches_scipy_and_two_class_dirichlet(self):
        z, f = _simplex(4, 2, 2)[:, 1:], _simplex(5, 2, 3)[:, 1:]
        h = 0.1
        expected = [
            [stats.beta.logpdf(float(z[j]), float(f[i]) / h + 1, (1 - float(f[i])) / h + 1) for i in range(5)]
            for j in range(4)
        ]
        out = dirichlet_log_kernel(z, f, h)
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)
        two = dirichlet_log_kernel(torch.cat([1 - z, z], 1), torch.cat([1 - f, f], 1), h)
        np.testing.assert_allclose(two.numpy(), out.numpy(), rtol=1e-12)

    def test_vertices_are_finite(self):
        corners = torch.eye(3, dtype=torch.float64)
        out = dirichlet_log_kernel(corners, corners, 0.1)
        self.assertTrue(bool(torch.isfinite(out).all()))
        # a corner only keeps weight from fitting points on that corner
        est = kde_conditional_expectation(corners, corners, torch.arange(3), bandwidth=0.1)
        np.testing.assert_allclose(est.numpy(), np.eye(3), atol=1e-12)


class TestConditionalExpectation(unittest.TestCase):
    @parameterized.expand(TEST_CASES)
    def test_values(self, kwargs, eval_points, fit_points, labels, expected):
        out = kde_conditional_expectation(
            torch.tensor(eval_points), torch.tensor(fit_points), torch.tensor(labels), bandwidth=0.1, **kwargs
        )
        self.assertEqual(out.dtype, torch.float64)
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-4, rtol=1e-4)

    def test_recovers_known_curve(self):
        # E[y | f] = f^2; the error at interior points shrinks with the sample size
        grid = torch.linspace(0.2, 0.8, 7, dtype=torch.float64)[:, None]
        errors = []
        for n in (300, 20000):
            f, y = _binary_data(n, seed=n)
            est = kde_conditional_expectation(grid, f[0].T, y[0].T, bandwidth=0.02)
            errors.append(float((est - grid**2).abs().max()))
        self.assertLess(errors[1], errors[0])
        self.assertLess(errors[1], 0.04)

    def test_multiclass_in_simplex(self):
        f = _simplex(600, 3, 4)
        labels = torch.multinomial(f, 1, generator=torch.Generator().manual_seed(5))[:, 0]
        est = kde_conditional_expectation(_simplex(50, 3, 6), f, labels, bandwidth=0.05)
        self.assertEqual(tuple(est.shape), (50, 3))
        self.assertTrue(bool(((est >= 0) & (est <= 1)).all()))
        np.testing.assert_allclose(est.sum(dim=1).numpy(), 1.0, rtol=1e-12)
        # integer labels equal one-hot labels
        one_hot = torch.nn.functional.one_hot(labels, 3)
        same = kde_conditional_expectation(_simplex(50, 3, 6), f, one_hot, bandwidth=0.05)
        np.testing.assert_allclose(same.numpy(), est.numpy(), rtol=1e-12)

    def test_blocks_equal_one_pass(self):
        f = _simplex(300, 3, 7)
        labels = torch.multinomial(f, 1, generator=torch.Generator().manual_seed(8))[:, 0]
        whole = kde_conditional_expectation(f, f, labels, 0.05, leave_one_out=True)
        with mock.patch.object(kde, "_BLOCK_ENTRIES", 25_000):  # blocks of 83 rows and a remainder
            blocked = kde_conditional_expectation(f, f, labels, 0.05, leave_one_out=True)
        np.testing.assert_allclose(blocked.numpy(), whole.numpy(), rtol=1e-12)

    def test_undefined_is_nan(self):
        out = kde_conditional_expectation(
            torch.tensor([[0.3]]), torch.tensor([[0.3]]), torch.tensor([1]), 0.1, leave_one_out=True
        )
        self.assertTrue(bool(torch.isnan(out).all()))
        empty = kde_conditional_expectation(torch.tensor([[0.3]]), torch.zeros(0, 1), torch.zeros(0, 1), 0.1)
        self.assertTrue(bool(torch.isnan(empty).all()))

    def test_errors(self):
        f = _simplex(4, 3, 9)
        labels = torch.tensor([0, 1, 2, 0])
        for h in (0.0, -0.1, float("inf"), float("nan"), True):
            with self.assertRaisesRegex(ValueError, "bandwidth"):
                kde_conditional_expectation(f, f, labels, bandwidth=h)
        with self.assertRaisesRegex(ValueError, "same number of classes"):
            kde_conditional_expectation(f[:, :2], f, labels)
        with self.assertRaisesRegex(ValueError, r"probs_fit must have shape \(N, K\)"):
            kde_conditional_expectation(f, f[0], labels)
        with self.assertRaisesRegex(ValueError, "labels_fit"):
            kde_conditional_expectation(f, f, labels[:3])
        with self.assertRaisesRegex(ValueError, "labels_fit"):
            kde_conditional_expectation(f, f, torch.zeros(4, 2))
        with self.assertRaisesRegex(ValueError, r"labels_fit must be an integer label map in \[0, 2\]"):
            kde_conditional_expectation(f, f, torch.tensor([0, 1, 3, 0]))
        with self.assertRaisesRegex(ValueError, r"labels_fit must hold probabilities in \[0, 1\]"):
            kde_conditional_expectation(f, f, torch.full((4, 3), 2.0))
        with self.assertRaisesRegex(ValueError, "probs_eval channels must sum to 1"):
            kde_conditional_expectation(f * 0.5, f, labels)
        with self.assertRaisesRegex(ValueError, r"probs_fit must hold probabilities in \[0, 1\]"):
            kde_conditional_expectation(f[:, :1], torch.tensor([[1.5], [0.2], [0.1], [0.0]]), labels % 2)
        with self.assertRaisesRegex(ValueError, "probs_eval contains NaN"):
            kde_conditional_expectation(torch.full((1, 3), float("nan")), f, labels)
        with self.assertRaisesRegex(ValueError, "leave_one_out"):
            kde_conditional_expectation(f[:2], f, labels, leave_one_out=True)
        with self.assertRaisesRegex(ValueError, "beta"):
            kde_conditional_expectation(f, f, labels, kernel="beta")
        with self.assertRaisesRegex(ValueError, "dirichlet"):
            kde_conditional_expectation(f, f, labels, kernel="gauss")


class TestKDECalibrationError(unittest.TestCase):
    def test_calibrated_and_miscalibrated(self):
        f, y = _binary_data(2000, seed=10, curve=lambda f: f)
        calibrated = float(compute_kde_calibration_error(f, y))
        f2, y2 = _binary_data(2000, seed=11)
        miscalibrated = float(compute_kde_calibration_error(f2, y2))
        # the canonical L1 error counts both classes: 2 E|f^2 - f| = 1/3
        self.assertLess(calibrated, 0.06)
        self.assertAlmostEqual(miscalibrated, 1 / 3, delta=0.04)
        # p = 2 estimates CE_2^2 = 2 E[(f^2 - f)^2] = 1/15
        self.assertAlmostEqual(float(compute_kde_calibration_error(f2, y2, p=2)), 1 / 15, delta=0.02)

    def test_binary_channel_equals_two_channels(self):
        f, y = _binary_data(500, seed=12)
        one = compute_kde_calibration_error(f, y)
        two = compute_kde_calibration_error(torch.cat([1 - f, f], 1), torch.cat([1 - y, y], 1))
        np.testing.assert_allclose(one.numpy(), two.numpy(), rtol=1e-10)
        self.assertEqual(one.dtype, torch.float64)
        self.assertEqual(compute_kde_calibration_error(f.float(), y.float()).dtype, torch.float32)

    def test_subsampling_is_seeded(self):
        # shape: (2, 3, 20, 20): 400 voxels per case, 150 drawn
        g = torch.Generator().manual_seed(13)
        probs = torch.softmax(3 * torch.randn(2, 3, 20, 20, generator=g), dim=1)
        y = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 20, 20), generator=g), 3).movedim(-1, 1).float()
        a = compute_kde_calibration_error(probs, y, max_voxels=150, seed=1)
        self.assertEqual(tuple(a.shape), (2, 1))
        np.testing.assert_array_equal(a.numpy(), compute_kde_calibration_error(probs, y, max_voxels=150, seed=1))
        self.assertFalse(torch.equal(a, compute_kde_calibration_error(probs, y, max_voxels=150, seed=2)))
        np.testing.assert_allclose(
            compute_kde_calibration_error(probs, y, max_voxels=None).numpy(),
            compute_kde_calibration_error(probs, y, max_voxels=400).numpy(),
            rtol=1e-6,
        )

    def test_too_few_voxels_is_nan(self):
        out = compute_kde_calibration_error(torch.full((2, 1, 1), 0.5), torch.ones(2, 1, 1))
        self.assertTrue(bool(torch.isnan(out).all()))

    def test_metric_equals_function(self):
        g = torch.Generator().manual_seed(14)
        probs = torch.softmax(3 * torch.randn(3, 3, 12, 12, generator=g), dim=1)
        y = torch.nn.functional.one_hot(torch.randint(0, 3, (3, 12, 12), generator=g), 3).movedim(-1, 1).float()
        metric = KDECalibrationErrorMetric(max_voxels=100, seed=5, get_not_nans=True)
        metric(probs[:2], y[:2])
        metric(probs[2:], y[2:])
        value, not_nans = metric.aggregate()
        expected = torch.cat(
            [
                compute_kde_calibration_error(probs[:2], y[:2], max_voxels=100, seed=5),
                compute_kde_calibration_error(probs[2:], y[2:], max_voxels=100, seed=5),
            ]
        )
        np.testing.assert_allclose(float(value), float(expected.mean()), rtol=1e-6)
        self.assertEqual(float(not_nans), 3.0)

    def test_errors(self):
        f, y = torch.full((1, 2, 4), 0.5), torch.zeros(1, 2, 4)
        with self.assertRaisesRegex(ValueError, "same shape"):
            compute_kde_calibration_error(f, y[:, :1])
        with self.assertRaisesRegex(ValueError, "y_pred channels must sum to 1"):
            compute_kde_calibration_error(f * 0.5, y)
        with self.assertRaisesRegex(ValueError, "bandwidth"):
            compute_kde_calibration_error(f, y, bandwidth=0)
        with self.assertRaisesRegex(ValueError, "p must be"):
            compute_kde_calibration_error(f, y, p=0.5)
        for bad in (1, 0, 2.5):
            with self.assertRaisesRegex(ValueError, "max_voxels"):
                KDECalibrationErrorMetric(max_voxels=bad)
        with self.assertRaisesRegex(ValueError, "bandwidth"):
            KDECalibrationErrorMetric(bandwidth=-1.0)
        with self.assertRaisesRegex(ValueError, "reference"):
            KDECalibrationErrorMetric()(f)


if __name__ == "__main__":
    unittest.main()
