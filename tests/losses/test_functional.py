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
from parameterized import parameterized

from monai_dml.losses import (
    DMLoss,
    dice_semimetric_loss,
    estimate_epsilon,
    overlap_statistics,
    pool_statistics,
    tversky_from_statistics,
)

X = torch.tensor([0.9, 0.6, 0.2, 0.1]).reshape(1, 1, 4)
Y = torch.tensor([1.0, 0.5, 0.0, 0.0]).reshape(1, 1, 4)

# shape: (1, 1, 4); by hand: sum x = 1.8, sum y = 1.5, sum min = 1.4, sum xy = 1.2, sum x^2 = 1.22, sum y^2 = 1.25
STAT_CASES = [
    ["dml1", False, (1.4, 0.4, 0.1)],
    ["dml2", False, (1.2, 0.4, 0.1)],
    ["sdl", False, (1.2, 0.6, 0.3)],
    ["dml1", True, (1.2, 0.02, 0.05)],
]


class TestOverlapStatistics(unittest.TestCase):
    @parameterized.expand(STAT_CASES)
    def test_hand_values(self, variant, squared, expected):
        tp, fp, fn = overlap_statistics(X, Y, variant, squared)
        np.testing.assert_allclose([tp.item(), fp.item(), fn.item()], expected, rtol=1e-5, atol=1e-7)

    def test_backward_saves_only_inputs(self):
        # the graph node keeps x and y and nothing of the size of x - y
        x = torch.rand(2, 3, 8, 8, requires_grad=True)
        y = torch.rand(2, 3, 8, 8)
        tp, _, _ = overlap_statistics(x, y, "dml1")
        saved = tp.grad_fn.saved_tensors
        self.assertEqual(len(saved), 2)
        self.assertTrue(all(s.data_ptr() in (x.data_ptr(), y.data_ptr()) for s in saved))

    def test_tie_gradient_matches_sdl_on_hard_labels(self):
        # prediction saturated at exactly 1 on a foreground voxel: DML1 and SDL gradients agree
        x = torch.tensor([[[1.0, 0.3, 0.0, 0.6]]], requires_grad=True)
        y = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
        (g1,) = torch.autograd.grad(DMLoss(variant="dml1")(x, y), x)
        (g2,) = torch.autograd.grad(DMLoss(variant="sdl")(x, y), x)
        np.testing.assert_allclose(g1.numpy(), g2.numpy(), rtol=1e-6)

    def test_shape_errors(self):
        with self.assertRaisesRegex(ValueError, "same shape"):
            overlap_statistics(torch.rand(1, 2, 3), torch.rand(1, 2, 4))
        with self.assertRaisesRegex(ValueError, "spatial"):
            overlap_statistics(torch.rand(1, 2), torch.rand(1, 2))


class TestReductionsAndForm(unittest.TestCase):
    def test_pool(self):
        stats = torch.arange(6.0).reshape(2, 3)
        np.testing.assert_allclose(pool_statistics(stats, "I").numpy(), stats.numpy())
        np.testing.assert_allclose(pool_statistics(stats, "BI").numpy(), [[3.0, 5.0, 7.0]])
        np.testing.assert_allclose(pool_statistics(stats, "CI").numpy(), [[3.0], [12.0]])
        np.testing.assert_allclose(pool_statistics(stats, "BCI").numpy(), [[15.0]])

    def test_tversky_form(self):
        # 1 - (2 * 2 + 1) / (2 * (2 + 0.5 * 1 + 0.5 * 3) + 1) = 1 - 5 / 9
        out = tversky_from_statistics(torch.tensor(2.0), torch.tensor(1.0), torch.tensor(3.0), 0.5, 0.5, 1.0, 1.0)
        np.testing.assert_allclose(out.item(), 4 / 9, rtol=1e-6)

    def test_functional_matches_module(self):
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand(2, 3, 5, 5, generator=g), torch.rand(2, 3, 5, 5, generator=g)
        f = dice_semimetric_loss(x, y, variant="dml2", phi="BI").mean()
        np.testing.assert_allclose(f.item(), DMLoss(variant="dml2", phi="BI")(x, y).item(), rtol=1e-6)


class TestEstimateEpsilon(unittest.TestCase):
    def test_tensor(self):
        labels = torch.zeros(2, 2, 4, 4)
        labels[:, 0] = 1.0
        labels[0, 1, :2, :2] = 1.0  # 4 voxels of class 1 in image 0
        labels[0, 0, :2, :2] = 0.0
        # class 0: (12 + 16) / 2 = 14, class 1: (4 + 0) / 2 = 2
        np.testing.assert_allclose(estimate_epsilon(labels).numpy(), [14.0, 2.0])
        np.testing.assert_allclose(estimate_epsilon(labels, include_background=False).numpy(), [2.0])

    def test_iterable_of_dicts_and_soft_labels(self):
        batches = [{"label": torch.full((2, 1, 3, 3), 0.5)}, {"label": torch.zeros(1, 1, 3, 3)}]
        # (4.5 + 4.5 + 0) / 3 images
        np.testing.assert_allclose(estimate_epsilon(batches).numpy(), [3.0])

    def test_unbatched_integer_maps(self):
        items = [np.array([[[0, 1], [2, 2]]]), np.array([[[1, 1], [0, 0]]])]
        # one-hot volumes: class 0: (1 + 2) / 2, class 1: (1 + 2) / 2, class 2: (2 + 0) / 2
        np.testing.assert_allclose(estimate_epsilon(items, num_classes=3, batched=False).numpy(), [1.5, 1.5, 1.0])

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "empty"):
            estimate_epsilon([])
        with self.assertRaisesRegex(ValueError, r"labels\[0\] must hold probabilities"):
            estimate_epsilon(torch.full((1, 1, 2, 2), 2.0))
        with self.assertRaisesRegex(ValueError, "NaN"):
            estimate_epsilon(torch.full((1, 1, 2, 2), float("nan")))
        with self.assertRaisesRegex(ValueError, r"labels\[1\] has 2 channels"):
            estimate_epsilon([torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2)])
        with self.assertRaisesRegex(TypeError, "without the key 'label'"):
            estimate_epsilon([{"image": torch.zeros(1, 1, 2, 2)}])
        with self.assertRaisesRegex(TypeError, "str"):
            estimate_epsilon(["a"])
        with self.assertRaisesRegex(ValueError, r"integer label map in \[0, 1\]"):
            estimate_epsilon(torch.full((1, 1, 2, 2), 3.0), num_classes=2)


if __name__ == "__main__":
    unittest.main()
