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
from monai.data import MetaTensor
from monai.utils import optional_import
from parameterized import parameterized

from monai_dml.transforms.fusion import staple as staple_module
from monai_dml.transforms.fusion.staple import StapleResult, staple_binary, staple_multiclass

_, has_itk = optional_import("itk", allow_namespace_pkg=True)

# NumPy, torch and MetaTensor inputs (CPU only: ITK runs on the CPU)
TEST_NDARRAYS = (np.asarray, torch.as_tensor, MetaTensor)


def _square_2d() -> np.ndarray:
    mask = np.zeros((8, 8), dtype=np.float32)
    mask[2:6, 2:6] = 1
    return mask


def _cube_3d() -> np.ndarray:
    mask = np.zeros((6, 6, 6), dtype=np.float32)
    mask[1:4, 2:5, 1:5] = 1
    return mask


def _nested_squares() -> np.ndarray:
    raters = np.zeros((3, 10, 10), dtype=np.float32)
    raters[0, 3:7, 3:7] = 1
    raters[1, 2:8, 2:8] = 1
    raters[2, 1:9, 1:9] = 1
    return raters


def _two_agree_one_shifted() -> np.ndarray:
    raters = np.stack([_square_2d()] * 3)
    raters[2] = np.roll(raters[2], 1, axis=0)
    return raters


# shape: (3, 8, 8), three identical 4x4 squares -> the square
# shape: (3, 6, 6, 6), three identical 3x3x4 boxes -> the box
IDENTICAL_CASES = [[p, m] for p in TEST_NDARRAYS for m in (_square_2d(), _cube_3d())]

# shape: (3, 10, 10), squares of side 4, 6, 8 around one centre
# shape: (3, 8, 8), two identical squares and the same square one row down
DISAGREE_CASES = [[p, r] for p in TEST_NDARRAYS for r in (_nested_squares(), _two_agree_one_shifted())]

# shape: (3, 5, 4) and (2, 3, 3, 3): every rater empty (probability 0) or full (probability 1)
DEGENERATE_CASES = [
    [np.zeros((3, 5, 4)), 0.0],
    [np.ones((3, 5, 4)), 1.0],
    [np.zeros((2, 3, 3, 3), dtype=np.uint8), 0.0],
    [np.ones((2, 3, 3, 3), dtype=bool), 1.0],
]

# (raters, kwargs, error, message regex)
BINARY_ERROR_CASES = [
    [np.zeros((0, 4, 4)), {}, ValueError, "raters.*at least one rater"],
    [np.zeros((3, 4)), {}, ValueError, "raters.*spatial dimensions"],
    [np.zeros((2, 3, 3, 3, 3)), {}, ValueError, "raters.*spatial dimensions"],
    [np.zeros((2, 0, 3)), {}, ValueError, "raters.*voxel"],
    [np.full((2, 3, 3), 0.5), {}, ValueError, "raters.*binary.*0.5"],
    [np.array([[[0.0, 1.0, 2.0]], [[0.0, 1.0, 1.0]]]), {}, ValueError, "raters.*binary.*2"],
    [np.array([[[0.0, np.nan]], [[0.0, 1.0]]]), {}, ValueError, "raters.*NaN"],
    [np.array([[[0.0, np.inf]], [[0.0, 1.0]]]), {}, ValueError, "raters.*Inf"],
    [np.zeros((2, 3, 3), dtype=np.complex64), {}, TypeError, "raters.*dtype"],
    [np.zeros((2, 3, 3)), {"foreground_value": 0}, ValueError, "foreground_value"],
    [np.zeros((2, 3, 3)), {"foreground_value": float("nan")}, ValueError, "foreground_value"],
    [np.array([[[0, 1]], [[1, 1]]]), {"confidence_weight": 0.0}, ValueError, "confidence_weight"],
    [np.array([[[0, 1]], [[1, 1]]]), {"confidence_weight": float("inf")}, ValueError, "confidence_weight"],
    # mean foreground fraction 0.75, scaled to 1.5
    [np.array([[[0, 1]], [[1, 1]]]), {"confidence_weight": 2.0}, ValueError, "confidence_weight"],
    [np.array([[[0, 1]], [[1, 1]]]), {"max_iterations": 0}, ValueError, "max_iterations"],
    [np.array([[[0, 1]], [[1, 1]]]), {"max_iterations": 2.5}, ValueError, "max_iterations"],
]

# (raters, num_classes, error, message regex)
MULTICLASS_ERROR_CASES = [
    [np.zeros((2, 3, 3), dtype=np.int64), 1, ValueError, "num_classes"],
    [np.zeros((2, 3, 3), dtype=np.int64), 2.5, ValueError, "num_classes"],
    [np.zeros((2, 3, 3), dtype=np.int64), True, ValueError, "num_classes"],
    [np.zeros((0, 3, 3), dtype=np.int64), 3, ValueError, "raters.*at least one rater"],
    [np.zeros((3, 3), dtype=np.int64), 3, ValueError, "raters.*spatial dimensions"],
    [np.full((2, 3, 3), 3), 3, ValueError, "raters.*num_classes.*3"],
    [np.full((2, 3, 3), -1), 3, ValueError, "raters.*num_classes.*-1"],
    [np.full((2, 3, 3), 0.5), 3, ValueError, "raters.*integer.*0.5"],
    [np.array([[[0.0, np.nan]], [[0.0, 1.0]]]), 3, ValueError, "raters.*NaN"],
]


@unittest.skipUnless(has_itk, "Requires ITK.")
class TestStapleBinary(unittest.TestCase):
    def _check_types(self, result: StapleResult, spatial: tuple[int, ...], n_raters: int) -> None:
        self.assertIsInstance(result, StapleResult)
        self.assertEqual(type(result.probability), torch.Tensor)
        self.assertEqual(result.probability.dtype, torch.float32)
        self.assertEqual(tuple(result.probability.shape), (1, *spatial))
        for stat in (result.sensitivity, result.specificity):
            self.assertEqual(stat.dtype, torch.float64)
            self.assertEqual(tuple(stat.shape), (n_raters,))
        self.assertEqual(result.iterations.shape, ())
        self.assertEqual(result.converged.dtype, torch.bool)
        self.assertTrue(bool(torch.isfinite(result.probability).all()))

    @parameterized.expand(IDENTICAL_CASES)
    def test_identical_raters(self, in_type, mask):
        result = staple_binary(in_type(np.stack([mask] * 3)))
        self._check_types(result, mask.shape, 3)
        np.testing.assert_allclose(result.probability[0].numpy(), mask, atol=1e-3)
        np.testing.assert_allclose(result.sensitivity.numpy(), 1.0, atol=1e-6)
        np.testing.assert_allclose(result.specificity.numpy(), 1.0, atol=1e-6)
        self.assertTrue(bool(result.converged))

    @parameterized.expand([[p] for p in TEST_NDARRAYS])
    def test_single_rater(self, in_type):
        mask = _cube_3d()
        result = staple_binary(in_type(mask[None]))
        self._check_types(result, mask.shape, 1)
        np.testing.assert_allclose(result.probability[0].numpy(), mask, atol=1e-6)

    @parameterized.expand(DISAGREE_CASES)
    def test_between_intersection_and_union(self, in_type, raters):
        result = staple_binary(in_type(raters))
        self._check_types(result, raters.shape[1:], 3)
        prob = result.probability[0].numpy()
        intersection, union = raters.min(axis=0), raters.max(axis=0)
        self.assertTrue(np.all(prob >= intersection - 1e-6))
        self.assertTrue(np.all(prob <= union + 1e-6))
        np.testing.assert_allclose(prob[intersection == 1], 1.0, atol=1e-3)
        np.testing.assert_allclose(prob[union == 0], 0.0, atol=1e-3)
        self.assertTrue(bool(result.converged))
        self.assertGreater(int(result.iterations), 0)

    def test_noisy_rater_is_down_weighted(self):
        # shape: (4, 16, 16): three raters draw nearly the same 8x8 square, the fourth marks 30% random voxels
        raters = np.zeros((4, 16, 16))
        raters[0, 4:12, 4:12] = 1
        raters[1, 5:12, 4:12] = 1
        raters[2, 4:12, 4:11] = 1
        raters[3] = np.random.default_rng(0).random((16, 16)) < 0.3
        result = staple_binary(raters)
        sens, spec = result.sensitivity.numpy(), result.specificity.numpy()
        self.assertLess(sens[3], sens[:3].min())
        self.assertLess(spec[3], spec[:3].min())
        # the consensus follows the good raters: their common square is foreground, the far corners background
        prob = result.probability[0].numpy()
        np.testing.assert_allclose(prob[5:11, 5:11], 1.0, atol=1e-3)
        self.assertLess(prob[:3, :3].max(), 0.5)

    @parameterized.expand(DEGENERATE_CASES)
    def test_all_empty_or_all_full(self, raters, expected):
        # ITK returns NaN here (p or q is 0 / 0); the documented result is the constant mask with p = q = 1
        result = staple_binary(raters)
        self._check_types(result, raters.shape[1:], raters.shape[0])
        np.testing.assert_array_equal(result.probability.numpy(), np.full((1, *raters.shape[1:]), expected))
        np.testing.assert_array_equal(result.sensitivity.numpy(), 1.0)
        np.testing.assert_array_equal(result.specificity.numpy(), 1.0)
        self.assertEqual(int(result.iterations), 0)
        self.assertTrue(bool(result.converged))

    def test_some_raters_empty(self):
        # shape: (3, 8, 8): one square and two empty masks is not degenerate, ITK runs and stays finite
        raters = np.zeros((3, 8, 8))
        raters[0] = _square_2d()
        result = staple_binary(raters)
        self._check_types(result, (8, 8), 3)
        self.assertTrue(bool(torch.isfinite(result.sensitivity).all()))
        self.assertTrue(bool(torch.isfinite(result.specificity).all()))

    def test_foreground_value_and_dtypes(self):
        raters = _two_agree_one_shifted()
        expected = staple_binary(raters).probability
        for value in (raters.astype(bool), torch.as_tensor(raters, dtype=torch.bfloat16), torch.as_tensor(raters)):
            torch.testing.assert_close(staple_binary(value).probability, expected)
        scaled = (raters * 255).astype(np.uint8)
        torch.testing.assert_close(staple_binary(scaled, foreground_value=255).probability, expected)
        with self.assertRaisesRegex(ValueError, "raters.*foreground_value=255"):
            staple_binary(raters, foreground_value=255)

    def test_max_iterations(self):
        raters = _nested_squares()
        result = staple_binary(raters, max_iterations=1)
        self.assertEqual(int(result.iterations), 1)
        self.assertFalse(bool(result.converged))
        unlimited = staple_binary(raters, max_iterations=None)
        self.assertTrue(bool(unlimited.converged))
        torch.testing.assert_close(unlimited.probability, staple_binary(raters).probability)

    def test_confidence_weight_changes_prior(self):
        raters = _two_agree_one_shifted()
        low = staple_binary(raters, confidence_weight=0.2).probability
        high = staple_binary(raters, confidence_weight=2.0).probability
        self.assertTrue(bool((low <= high + 1e-6).all()))

    def test_float_pixel_type_fallback(self):
        raters = _nested_squares()
        expected = staple_binary(raters)
        with mock.patch.object(staple_module, "_PIXEL_TYPES", ("F",)):
            result = staple_binary(raters)
        torch.testing.assert_close(result.probability, expected.probability, atol=1e-5, rtol=0)
        torch.testing.assert_close(result.sensitivity, expected.sensitivity, atol=1e-5, rtol=0)

    def test_unwrapped_pixel_type(self):
        with (
            mock.patch.object(staple_module, "_PIXEL_TYPES", ("UC",)),
            self.assertRaisesRegex(ImportError, "pip install itk"),
        ):
            staple_binary(_two_agree_one_shifted())

    def test_non_finite_itk_output_is_replaced(self):
        raters = _two_agree_one_shifted()

        def fake_itk(mask, confidence_weight, max_iterations):
            prob = np.zeros(mask.shape[1:])
            prob[0, 0] = np.nan
            prob[2, 2] = np.nan
            return prob, np.ones(3), np.ones(3), 5

        with mock.patch.object(staple_module, "_run_itk_staple", fake_itk), self.assertWarns(UserWarning):
            result = staple_binary(raters)
        prob = result.probability[0].numpy()
        self.assertTrue(np.isfinite(prob).all())
        self.assertEqual(prob[0, 0], 0.0)
        self.assertAlmostEqual(float(prob[2, 2]), 2 / 3, places=6)

    def test_itk_missing(self):
        with (
            mock.patch.object(staple_module, "has_itk", False),
            self.assertRaisesRegex(ImportError, "pip install itk"),
        ):
            staple_binary(_two_agree_one_shifted())
        with (
            mock.patch.object(staple_module, "has_itk", False),
            self.assertRaisesRegex(ImportError, "pip install itk"),
        ):
            staple_multiclass(np.zeros((2, 3, 3), dtype=np.int64), 2)

    @parameterized.expand(BINARY_ERROR_CASES)
    def test_errors(self, raters, kwargs, error, regex):
        with self.assertRaisesRegex(error, regex):
            staple_binary(raters, **kwargs)


@unittest.skipUnless(has_itk, "Requires ITK.")
class TestStapleMulticlass(unittest.TestCase):
    LABELS = np.array([[0, 0, 1, 1, 1], [0, 2, 2, 1, 1], [0, 2, 2, 0, 0], [0, 0, 0, 0, 0]])

    @parameterized.expand([[p] for p in TEST_NDARRAYS])
    def test_identical_raters_one_hot(self, in_type):
        # shape: (3, 4, 5), labels {0, 1, 2} -> one-hot (3, 4, 5)
        result = staple_multiclass(in_type(np.stack([self.LABELS] * 3)), num_classes=3)
        self.assertEqual(type(result.probability), torch.Tensor)
        self.assertEqual(result.probability.dtype, torch.float32)
        self.assertEqual(tuple(result.probability.shape), (3, 4, 5))
        for stat in (result.sensitivity, result.specificity):
            self.assertEqual(stat.dtype, torch.float64)
            self.assertEqual(tuple(stat.shape), (3, 3))
        self.assertEqual(tuple(result.iterations.shape), (3,))
        self.assertEqual(tuple(result.converged.shape), (3,))
        one_hot = np.eye(3)[self.LABELS].transpose(2, 0, 1)
        np.testing.assert_allclose(result.probability.numpy(), one_hot, atol=1e-3)
        np.testing.assert_allclose(result.probability.sum(0).numpy(), 1.0, atol=1e-6)

    def test_absent_class(self):
        # shape: (2, 4, 5), num_classes=4 but label 3 never drawn: its channel is 0, p = q = 1
        result = staple_multiclass(np.stack([self.LABELS] * 2), num_classes=4)
        self.assertEqual(tuple(result.probability.shape), (4, 4, 5))
        np.testing.assert_array_equal(result.probability[3].numpy(), 0.0)
        np.testing.assert_array_equal(result.sensitivity[3].numpy(), 1.0)
        np.testing.assert_array_equal(result.specificity[3].numpy(), 1.0)
        np.testing.assert_allclose(result.probability.sum(0).numpy(), 1.0, atol=1e-6)

    def test_single_class_everywhere(self):
        # shape: (2, 3, 3), every rater draws class 1 everywhere
        result = staple_multiclass(torch.ones(2, 3, 3, dtype=torch.int64), num_classes=2)
        np.testing.assert_array_equal(result.probability[0].numpy(), 0.0)
        np.testing.assert_array_equal(result.probability[1].numpy(), 1.0)

    def test_disagreement_sums_to_one(self):
        raters = np.stack([self.LABELS, np.roll(self.LABELS, 1, axis=1), np.roll(self.LABELS, 1, axis=0)])
        result = staple_multiclass(torch.as_tensor(raters, dtype=torch.float32), num_classes=3)
        prob = result.probability.numpy()
        self.assertTrue(np.all((prob >= 0) & (prob <= 1)))
        np.testing.assert_allclose(prob.sum(0), 1.0, atol=1e-6)
        # where all three raters agree, their class is the most probable one (not 1: the raters are imperfect)
        agree = (raters == raters[0]).all(axis=0)
        np.testing.assert_array_equal(prob.argmax(0)[agree], raters[0][agree])
        self.assertGreater(np.take_along_axis(prob, raters[:1], axis=0)[0][agree].min(), 0.5)

    def test_uniform_where_all_classes_zero(self):
        # shape: (2, 1, 4): at voxel (0, 1) every one-vs-rest posterior is 0, so the mass is spread uniformly
        raters = np.array([[[2, 1, 0, 2]], [[1, 2, 0, 1]]])
        result = staple_multiclass(raters, num_classes=3)
        np.testing.assert_allclose(result.probability[:, 0, 1].numpy(), 1 / 3, atol=1e-6)
        np.testing.assert_allclose(result.probability.sum(0).numpy(), 1.0, atol=1e-6)

    @parameterized.expand(MULTICLASS_ERROR_CASES)
    def test_errors(self, raters, num_classes, error, regex):
        with self.assertRaisesRegex(error, regex):
            staple_multiclass(raters, num_classes)


if __name__ == "__main__":
    unittest.main()
