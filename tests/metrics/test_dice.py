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

from monai_dml.metrics import BinarizedDiceMetric, SoftDiceMetric, compute_binarized_dice, compute_soft_dice

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

    def test_half_precision_does_not_overflow(self):
        ones = torch.ones(1, 1, 300, 300, dtype=torch.float16)
        np.testing.assert_allclose(compute_soft_dice(ones, ones).item(), 1.0)

    def test_empty_reference_rule_and_background(self):
        empty = torch.zeros(1, 2, 3)
        out = compute_soft_dice(empty, empty, include_background=False)
        self.assertEqual(tuple(out.shape), (1, 1))
        self.assertEqual(out.tolist(), [[1.0]])  # ignore_empty=False: both empty agree perfectly
        self.assertTrue(bool(compute_soft_dice(empty, empty, ignore_empty=True).isnan().all()))
        # a prediction on an empty reference: 0 without ignore_empty, NaN with it
        pred = torch.tensor([[[0.0, 0.5, 0.0]]])
        self.assertEqual(compute_soft_dice(pred, torch.zeros(1, 1, 3)).tolist(), [[0.0]])
        self.assertTrue(bool(compute_soft_dice(pred, torch.zeros(1, 1, 3), ignore_empty=True).isnan().all()))

    @parameterized.expand([[True], [False]])
    def test_empty_rule_matches_monai(self, ignore_empty):
        # images: reference and prediction both empty, reference empty only, prediction empty only, neither
        y_pred = torch.zeros(4, 1, 2, 2)
        y = torch.zeros(4, 1, 2, 2)
        y_pred[1, 0, 0, 0] = y_pred[3, 0, 0, 0] = y_pred[3, 0, 1, 1] = 1.0
        y[2, 0, 1, 0] = y[3, 0, 0, 0] = 1.0
        expected = DiceMetric(reduction="none", ignore_empty=ignore_empty)(y_pred, y)
        out = compute_soft_dice(y_pred, y, ignore_empty=ignore_empty)
        np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)  # NaN where MONAI has NaN
        metric = SoftDiceMetric(ignore_empty=ignore_empty)
        metric(y_pred, y)
        np.testing.assert_allclose(metric.aggregate("none").numpy(), expected.numpy(), rtol=1e-6)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "same shape"):
            compute_soft_dice(torch.zeros(1, 1, 3), torch.zeros(1, 1, 4))
        with self.assertRaisesRegex(ValueError, r"y_pred must hold probabilities"):
            compute_soft_dice(torch.full((1, 1, 3), 2.0), torch.zeros(1, 1, 3))
        with self.assertRaisesRegex(ValueError, "y contains NaN"):
            compute_soft_dice(torch.zeros(1, 1, 3), torch.full((1, 1, 3), float("nan")))


class TestBinarizedDice(unittest.TestCase):
    def test_identical_maps(self):
        y = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(0))
        np.testing.assert_allclose(compute_binarized_dice(y, y).numpy(), 1.0)

    def test_against_own_half_threshold(self):
        # x = [.9, .6, .2, .1], y = 1[x > .5] = [1, 1, 0, 0]; x > t is [1,1,1,0] at t=.1 (Dice 4/5), [1,1,0,0] at
        # t=.2..0.5 (1, four levels), [1,0,0,0] at t=.6..0.8 (2/3, three levels), empty at t=.9 (0):
        # mean = (0.8 + 4 + 2) / 9
        x = torch.tensor([[[0.9, 0.6, 0.2, 0.1]]])
        np.testing.assert_allclose(compute_binarized_dice(x, (x > 0.5).float()).item(), 6.8 / 9, rtol=1e-6)

    @parameterized.expand([[torch.float16], [torch.float32], [torch.float64]])
    def test_level_compares_in_map_dtype(self, dtype):
        # 0.9 stored at the map's precision equals the level 0.9 at that precision: background (strict >), so
        # the expected value is the one above, 6.8 / 9, in every dtype (a float32 level gave 0.8296 in float64).
        x = torch.tensor([[[0.9, 0.6, 0.2, 0.1]]], dtype=dtype)
        y = (x > 0.5).to(dtype)
        np.testing.assert_allclose(compute_binarized_dice(x, y).item(), 6.8 / 9, rtol=1e-6)
        np.testing.assert_allclose(BinarizedDiceMetric()(x, y).item(), 6.8 / 9, rtol=1e-6)
        # a single level at 0.6: x > 0.6 is [1, 0, 0, 0] against [1, 1, 0, 0]: 2 / 3
        np.testing.assert_allclose(compute_binarized_dice(x, y, [0.6]).item(), 2 / 3, rtol=1e-6)

    def test_both_empty_is_one(self):
        x = torch.full((1, 1, 3), 0.05)
        np.testing.assert_allclose(compute_binarized_dice(x, torch.zeros(1, 1, 3)).item(), 1.0)
        self.assertTrue(bool(compute_binarized_dice(x, torch.zeros(1, 1, 3), ignore_empty=True).isnan().all()))

    def test_ignore_empty_leaves_levels_out(self):
        # y = [.3, .3, 0, 0] is empty at t = .3, ..., .9 (strict >); x = [.25, .35, 0, 0]. Levels .1, .2: both
        # [1, 1, 0, 0], Dice 1. Level .3: x > .3 is [0, 1, 0, 0] on an empty reference: 0. Levels .4 .. .9: both
        # empty: 1. ignore_empty=False: (2 + 0 + 6) / 9; True: the mean of the levels .1 and .2 only, 1.
        x = torch.tensor([[[0.25, 0.35, 0.0, 0.0]]])
        y = torch.tensor([[[0.3, 0.3, 0.0, 0.0]]])
        np.testing.assert_allclose(compute_binarized_dice(x, y).item(), 8 / 9, rtol=1e-6)
        np.testing.assert_allclose(compute_binarized_dice(x, y, ignore_empty=True).item(), 1.0, rtol=1e-6)
        np.testing.assert_allclose(BinarizedDiceMetric(ignore_empty=True)(x, y).item(), 1.0, rtol=1e-6)

    def test_one_rule_across_metrics(self):
        # an empty reference with an empty prediction: 1 for soft Dice and BDice alike, NaN for both with
        # ignore_empty=True (MONAI's DiceMetric semantics)
        empty = torch.zeros(1, 1, 4)
        for ignore_empty, expected in ((False, 1.0), (True, float("nan"))):
            values = [
                SoftDiceMetric(ignore_empty=ignore_empty)(empty, empty).item(),
                SoftDiceMetric(threshold=0.5, ignore_empty=ignore_empty)(empty, empty).item(),
                BinarizedDiceMetric(ignore_empty=ignore_empty)(empty, empty).item(),
            ]
            np.testing.assert_equal(values, [expected] * 3)

    def test_thresholds_and_errors(self):
        x = torch.tensor([[[0.9, 0.3]]])
        np.testing.assert_allclose(compute_binarized_dice(x, torch.tensor([[[1.0, 1.0]]]), [0.5]).item(), 2 / 3)
        with self.assertRaisesRegex(ValueError, "thresholds"):
            compute_binarized_dice(x, x, [0.0, 0.5])
        with self.assertRaisesRegex(ValueError, "thresholds"):
            compute_binarized_dice(x, x, [])
        with self.assertRaisesRegex(ValueError, "thresholds"):
            BinarizedDiceMetric(thresholds=[1.0])


class TestMetricClasses(unittest.TestCase):
    def test_accumulation_equals_one_batch(self):
        g = torch.Generator().manual_seed(3)
        preds, labels = torch.rand(6, 2, 5, 5, generator=g), torch.rand(6, 2, 5, 5, generator=g)
        for cls in (SoftDiceMetric, BinarizedDiceMetric):
            batched, whole = cls(), cls()
            for i in range(0, 6, 2):
                batched(preds[i : i + 2], labels[i : i + 2])
            whole(preds, labels)
            np.testing.assert_allclose(batched.aggregate().numpy(), whole.aggregate().numpy(), rtol=1e-6)
            np.testing.assert_allclose(batched.aggregate("none").numpy(), whole.aggregate("none").numpy(), rtol=1e-6)

    def test_threshold_is_hard_dice(self):
        g = torch.Generator().manual_seed(4)
        p, y = torch.rand(2, 1, 6, 6, generator=g), torch.rand(2, 1, 6, 6, generator=g)
        hard = SoftDiceMetric(threshold=0.5)(p, y)
        expected = DiceMetric(reduction="none")((p > 0.5).float(), (y > 0.5).float())
        np.testing.assert_allclose(hard.numpy(), expected.numpy(), rtol=1e-6)
        with self.assertRaisesRegex(ValueError, "threshold"):
            SoftDiceMetric(threshold=1.5)

    def test_not_nans(self):
        metric = SoftDiceMetric(get_not_nans=True, ignore_empty=True)
        metric(torch.zeros(1, 2, 3), torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]))
        value, not_nans = metric.aggregate()
        self.assertEqual(int(not_nans), 1)  # class 0 is empty in both: NaN, skipped
        self.assertEqual(float(value), 0.0)


if __name__ == "__main__":
    unittest.main()
