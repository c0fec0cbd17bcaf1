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
from scipy import ndimage

from monai_dml.metrics import VolumeBiasMetric, compute_volume_bias


def blurred_disc(size: int = 64, radius: float = 14.0, sigma: float = 3.0) -> torch.Tensor:
    yy, xx = np.mgrid[:size, :size]
    disc = (np.hypot(yy - size / 2, xx - size / 2) <= radius).astype(np.float64)
    return torch.as_tensor(ndimage.gaussian_filter(disc, sigma)).float().clamp(0, 1).reshape(1, 1, size, size)


class TestVolumeBias(unittest.TestCase):
    def test_hand_values(self):
        p = torch.tensor([[[0.9, 0.6, 0.0]]])
        y = torch.tensor([[[1.0, 0.0, 0.0]]])
        np.testing.assert_allclose(compute_volume_bias(p, y).item(), 0.5, rtol=1e-6)  # (1.5 - 1) / 1
        np.testing.assert_allclose(compute_volume_bias(p, y, mode="hard").item(), 1.0)  # (2 - 1) / 1
        np.testing.assert_allclose(compute_volume_bias(p, y, relative=False).item(), 0.5, rtol=1e-6)

    def test_identity_is_zero(self):
        y = blurred_disc()
        np.testing.assert_allclose(compute_volume_bias(y, y).item(), 0.0, atol=1e-7)

    def test_soft_dice_optimum_over_segments(self):
        """Nordström et al., Theorem 1: the soft-Dice optimum for a soft label m is 1[m > D*/2] with D* the best
        Dice of a binary segmentation, a threshold <= 1/2; for a symmetrically blurred disc it over-estimates the
        expected volume sum(m), and its volume respects Theorem 2's lower bound |m|^2 (volumes as fractions)."""
        m = blurred_disc()
        levels = torch.unique(m)
        best, best_t = -1.0, 0.0
        for t in levels.tolist():  # optimal binary segmentations are level sets of m
            s = (m >= t).float()
            dice = (2 * (s * m).sum() / (s.sum() + m.sum())).item()
            if dice > best:
                best, best_t = dice, t
        self.assertLess(best_t, 0.5)
        np.testing.assert_allclose(best_t, best / 2, atol=0.02)
        optimum = (m >= best_t).float()
        bias = compute_volume_bias(optimum, m).item()
        self.assertGreater(bias, 0.0)  # over-segmentation
        self.assertGreater(bias, compute_volume_bias((m > 0.5).float(), m).item())
        n = m.numel()
        self.assertGreaterEqual(optimum.sum().item() / n, (m.sum().item() / n) ** 2)

    def test_empty_label_and_metric(self):
        out = compute_volume_bias(torch.zeros(1, 1, 3), torch.zeros(1, 1, 3))
        self.assertTrue(bool(torch.isnan(out).all()))
        metric = VolumeBiasMetric(get_not_nans=True)
        metric(torch.tensor([[[0.9, 0.6, 0.0]]]), torch.tensor([[[1.0, 0.0, 0.0]]]))
        metric(torch.zeros(1, 1, 3), torch.zeros(1, 1, 3))
        value, not_nans = metric.aggregate()
        np.testing.assert_allclose(float(value), 0.5, rtol=1e-6)
        self.assertEqual(int(not_nans), 1)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "soft"):
            compute_volume_bias(torch.zeros(1, 1, 3), torch.zeros(1, 1, 3), mode="sofft")
        with self.assertRaisesRegex(ValueError, "same shape"):
            compute_volume_bias(torch.zeros(1, 1, 3), torch.zeros(1, 1, 4))
        with self.assertRaisesRegex(ValueError, "y_pred must hold probabilities"):
            compute_volume_bias(torch.full((1, 1, 3), -1.0), torch.zeros(1, 1, 3))


if __name__ == "__main__":
    unittest.main()
