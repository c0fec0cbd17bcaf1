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
from monai.metrics import DiceMetric
from parameterized import parameterized

from monai_dml.metrics import compute_soft_dice

CASES = [
    # shape: (1, 1, 4): 2 * 1 / (2 + 1)
    [torch.tensor([[[1.0, 1.0, 0.0, 0.0]]]), torch.tensor([[[1.0, 0.0, 0.0, 0.0]]]), [[2 / 3]]],
    # soft: sum min = 0.5 + 0.2 = 0.7, sums 1.0 + 1.2 -> 1.4 / 2.2
    [torch.tensor([[[0.5, 0.5, 0.0]]]), torch.tensor([[[1.0, 0.2, 0.0]]]), [[1.4 / 2.2]]],
    # identical soft maps: 1
    [torch.tensor([[[0.3, 0.7]]]), torch.tensor([[[0.3, 0.7]]]), [[1.0]]],
]


class TestSoftDice(unittest.TestCase):
    @parameterized.expand(CASES)
    def test_values(self, a, b, expected):
        np.testing.assert_allclose(compute_soft_dice(a, b).numpy(), expected, rtol=1e-6)

    def test_matches_monai_on_hard_maps(self):
        g = torch.Generator().manual_seed(0)
        a = (torch.rand(3, 2, 6, 6, generator=g) > 0.5).float()
        b = (torch.rand(3, 2, 6, 6, generator=g) > 0.5).float()
        expected = DiceMetric(include_background=True, reduction="none")(a, b)
        np.testing.assert_allclose(compute_soft_dice(a, b).numpy(), expected.numpy(), rtol=1e-6)

    def test_empty_is_nan_and_background(self):
        out = compute_soft_dice(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), include_background=False)
        self.assertEqual(tuple(out.shape), (1, 1))
        self.assertTrue(bool(torch.isnan(out).all()))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "same shape"):
            compute_soft_dice(torch.zeros(1, 1, 3), torch.zeros(1, 1, 4))
        with self.assertRaisesRegex(ValueError, r"y_pred must hold probabilities"):
            compute_soft_dice(torch.full((1, 1, 3), 2.0), torch.zeros(1, 1, 3))
        with self.assertRaisesRegex(ValueError, "y contains NaN"):
            compute_soft_dice(torch.zeros(1, 1, 3), torch.full((1, 1, 3), float("nan")))


if __name__ == "__main__":
    unittest.main()
