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

import itertools
import math
import unittest

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor, set_track_meta
from monai.transforms import Compose
from parameterized import parameterized
from scipy import ndimage

from monai_dml.transforms.smoothing import (
    LabelSmoothing,
    LabelSmoothingD,
    LabelSmoothingd,
    LabelSmoothingDict,
    LabelSmoothingMethod,
)
from tests.transforms.utils import ndarray_converters, to_numpy

METHODS = ["uniform", "boundary", "svls"]
AFFINE = torch.diag(torch.tensor([2.0, 3.0, 4.0, 1.0]))


def _as_meta(x):
    return MetaTensor(torch.as_tensor(x), affine=AFFINE.clone(), meta={"filename_or_obj": "label.nii.gz"})


TEST_NDARRAYS = ndarray_converters(_as_meta)


# ---- uniform: y' = (1 - eps) y + eps / K ----
UNIFORM_CASES = [
    # shape: (2, 1, 4) two classes, one-hot and soft voxels; eps=0.1, K=2: 1 -> 0.95, 0 -> 0.05, 0.7 -> 0.68
    [
        {"method": "uniform", "epsilon": 0.1},
        [[[1.0, 0.0, 0.7, 0.5]], [[0.0, 1.0, 0.3, 0.5]]],
        [[[0.95, 0.05, 0.68, 0.5]], [[0.05, 0.95, 0.32, 0.5]]],
    ],
    # shape: (1, 1, 4) binary map, treated as [1 - y, y]; eps=0.2: y' = 0.8 y + 0.1
    [{"method": "uniform", "epsilon": 0.2}, [[[0.0, 1.0, 0.5, 0.25]]], [[[0.1, 0.9, 0.5, 0.3]]]],
    # shape: (1, 1, 4) integer map -> (3, 1, 4); eps=0.3, K=3: hot 0.7 + 0.1 = 0.8, cold 0.1
    [
        {"method": "uniform", "epsilon": 0.3, "num_classes": 3},
        [[[0, 2, 1, 0]]],
        [[[0.8, 0.1, 0.1, 0.8]], [[0.1, 0.1, 0.8, 0.1]], [[0.1, 0.8, 0.1, 0.1]]],
    ],
]

# ---- boundary: 8x8 binary map, 4x4 square at rows/cols 2..5, width=1, eps=0.5: 1 -> 0.75, 0 -> 0.25 ----
SQUARE = np.zeros((1, 8, 8), dtype=np.float32)
SQUARE[0, 2:6, 2:6] = 1.0
_O, _I, _S0, _S1 = 0.0, 1.0, 0.25, 0.75  # far background, square interior, smoothed 0, smoothed 1
SQUARE_BOUNDARY_W1 = np.array(
    [
        [
            [_O, _O, _O, _O, _O, _O, _O, _O],
            [_O, _S0, _S0, _S0, _S0, _S0, _S0, _O],
            [_O, _S0, _S1, _S1, _S1, _S1, _S0, _O],
            [_O, _S0, _S1, _I, _I, _S1, _S0, _O],
            [_O, _S0, _S1, _I, _I, _S1, _S0, _O],
            [_O, _S0, _S1, _S1, _S1, _S1, _S0, _O],
            [_O, _S0, _S0, _S0, _S0, _S0, _S0, _O],
            [_O, _O, _O, _O, _O, _O, _O, _O],
        ]
    ],
    dtype=np.float32,
)
BOUNDARY_CASES = [
    # shape: (1, 8, 8) binary square
    [{"method": "boundary", "epsilon": 0.5, "width": 1}, SQUARE, SQUARE_BOUNDARY_W1],
    # shape: (2, 8, 8) the same square one-hot: channel 0 is 1 - channel 1
    [
        {"method": "boundary", "epsilon": 0.5, "width": 1},
        np.concatenate([1 - SQUARE, SQUARE]),
        np.concatenate([1 - SQUARE_BOUNDARY_W1, SQUARE_BOUNDARY_W1]),
    ],
    # shape: (1, 1, 8) integer map -> (2, 1, 8), edge between voxels 3 and 4; width=2 smooths voxels 2..5
    [
        {"method": "boundary", "epsilon": 0.5, "width": 2, "num_classes": 2},
        [[[0, 0, 0, 0, 1, 1, 1, 1]]],
        [[[1, 1, 0.75, 0.75, 0.25, 0.25, 0, 0]], [[0, 0, 0.25, 0.25, 0.75, 0.75, 1, 1]]],
    ],
    # shape: (1, 1, 5) soft binary map: class by y > 0.5 is [0, 0, 0, 1, 1]; voxels 2 and 3 touch the edge
    [
        {"method": "boundary", "epsilon": 0.5, "width": 1},
        [[[0.0, 0.2, 0.4, 0.6, 1.0]]],
        [[[0.0, 0.2, 0.45, 0.55, 1.0]]],
    ],
]


def _svls_weights_3x3(sigma: float) -> tuple[float, float]:
    """(edge, diagonal) weights of the 2-D 3x3 SVLS kernel, from the Gaussian formula; the centre is 1/2."""
    edge, diag = math.exp(-1 / (2 * sigma**2)), math.exp(-2 / (2 * sigma**2))
    neighbours = 4 * edge + 4 * diag  # the new centre weight; the kernel then sums to 2 * neighbours
    return edge / (2 * neighbours), diag / (2 * neighbours)


class TestLabelSmoothingValues(unittest.TestCase):
    @parameterized.expand(UNIFORM_CASES + BOUNDARY_CASES)
    def test_hand_values(self, init_kwargs, img, expected):
        for convert in TEST_NDARRAYS:
            out = LabelSmoothing(**init_kwargs)(convert(np.asarray(img)))
            self.assertEqual(out.dtype, np.float32 if isinstance(out, np.ndarray) else torch.float32)
            np.testing.assert_allclose(to_numpy(out), np.asarray(expected, dtype=np.float32), rtol=1e-5, atol=1e-6)

    def test_svls_single_voxel(self):
        # shape: (1, 5, 5), one foreground voxel at the centre; kernel_size=3, sigma=1
        img = np.zeros((1, 5, 5), dtype=np.float32)
        img[0, 2, 2] = 1.0
        edge, diag = _svls_weights_3x3(1.0)
        expected = np.zeros((1, 5, 5))
        expected[0, 1:4, 1:4] = [[diag, edge, diag], [edge, 0.5, edge], [diag, edge, diag]]
        self.assertAlmostEqual(0.5 + 4 * edge + 4 * diag, 1.0, places=12)
        out = LabelSmoothing(method="svls", kernel_size=3, sigma=1.0)(img)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
        # as one-hot (2, 5, 5): the background channel is the complement
        out2 = LabelSmoothing(method="svls", kernel_size=3, sigma=1.0)(np.concatenate([1 - img, img]))
        np.testing.assert_allclose(out2, np.concatenate([1 - expected, expected]), rtol=1e-5, atol=1e-6)

    def test_svls_corner_voxel_replicate_padding(self):
        # shape: (1, 5, 5), foreground voxel at the corner (0, 0): edge padding copies it to (-1, -1), (-1, 0), (0, -1)
        img = np.zeros((1, 5, 5), dtype=np.float32)
        img[0, 0, 0] = 1.0
        edge, diag = _svls_weights_3x3(1.0)
        expected = np.zeros((1, 5, 5))
        expected[0, 0, 0] = 0.5 + 2 * edge + diag
        expected[0, 0, 1] = expected[0, 1, 0] = edge + diag
        expected[0, 1, 1] = diag
        out = LabelSmoothing(method="svls")(img)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
        both = LabelSmoothing(method="svls")(np.concatenate([1 - img, img]))
        np.testing.assert_allclose(both.sum(0), np.ones((5, 5)), rtol=0, atol=1e-6)

    def test_svls_3d_single_voxel(self):
        # shape: (1, 3, 3, 3); face, edge and corner neighbours at squared distance 1, 2, 3; sigma=2
        img = np.zeros((1, 3, 3, 3), dtype=np.float32)
        img[0, 1, 1, 1] = 1.0
        sigma = 2.0
        face, edge, corner = (math.exp(-d / (2 * sigma**2)) for d in (1, 2, 3))
        neighbours = 6 * face + 12 * edge + 8 * corner
        out = LabelSmoothing(method="svls", sigma=sigma)(img)
        np.testing.assert_allclose(out[0, 1, 1, 1], 0.5, rtol=1e-5)
        np.testing.assert_allclose(out[0, 0, 1, 1], face / (2 * neighbours), rtol=1e-5)
        np.testing.assert_allclose(out[0, 0, 0, 1], edge / (2 * neighbours), rtol=1e-5)
        np.testing.assert_allclose(out[0, 2, 2, 0], corner / (2 * neighbours), rtol=1e-5)

    def test_svls_matches_scipy(self):
        # random soft (3, 6, 5, 4) against scipy.ndimage.convolve(mode="nearest") with a kernel built here
        rng = np.random.default_rng(0)
        img = rng.dirichlet(np.ones(3), size=(6, 5, 4)).transpose(3, 0, 1, 2).astype(np.float32)
        kernel_size, sigma = 5, 1.5
        r = np.arange(kernel_size) - kernel_size // 2
        d2 = r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2
        kernel = np.exp(-d2 / (2 * sigma**2))
        kernel[2, 2, 2] = kernel.sum() - kernel[2, 2, 2]
        kernel /= kernel.sum()
        expected = np.stack([ndimage.convolve(c.astype(np.float64), kernel, mode="nearest") for c in img])
        out = LabelSmoothing(method="svls", kernel_size=kernel_size, sigma=sigma)(img)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)

    def test_call_overrides(self):
        img = np.array([[[0.0, 1.0]]], dtype=np.float32)
        smooth = LabelSmoothing(method="uniform", epsilon=0.1, width=1)
        np.testing.assert_allclose(smooth(img, epsilon=0.5), [[[0.25, 0.75]]], rtol=1e-5)
        np.testing.assert_allclose(smooth(img, epsilon=0.0), img)
        np.testing.assert_allclose(smooth(SQUARE, epsilon=0.5, method="boundary")[0, 3], SQUARE_BOUNDARY_W1[0, 3])
        np.testing.assert_allclose(smooth(img), [[[0.05, 0.95]]], rtol=1e-5)  # init values unchanged
        self.assertEqual(smooth.method, LabelSmoothingMethod.UNIFORM)


def _random_labels(spatial: tuple[int, ...], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, size=spatial)
    # blocky map: 4-voxel blocks of one class, so that some voxels are far from every boundary
    blocky = rng.integers(0, 3, size=tuple(-(-s // 4) for s in spatial))
    for axis in range(len(spatial)):
        blocky = np.repeat(blocky, 4, axis=axis)
    blocky = blocky[tuple(slice(s) for s in spatial)]
    return {
        "onehot": np.eye(3, dtype=np.float32)[classes].transpose(-1, *range(len(spatial))),
        "blocky": np.eye(3, dtype=np.float32)[blocky].transpose(-1, *range(len(spatial))),
        "soft": rng.dirichlet(np.ones(3), size=spatial).transpose(-1, *range(len(spatial))).astype(np.float32),
        "binary": rng.random((1,) + spatial).astype(np.float32),
    }


PROPERTY_CASES = [
    [method, spatial, seed] for method, (spatial, seed) in itertools.product(METHODS, [((6, 7), 0), ((6, 5, 4), 1)])
]


class TestLabelSmoothingProperties(unittest.TestCase):
    @parameterized.expand(PROPERTY_CASES)
    def test_range_and_sums(self, method, spatial, seed):
        for name, img in _random_labels(spatial, seed).items():
            out = LabelSmoothing(method=method, epsilon=0.3, width=1)(img)
            self.assertEqual(out.shape, img.shape, name)
            self.assertGreaterEqual(out.min(), 0.0, name)
            self.assertLessEqual(out.max(), 1.0, name)
            if name != "binary":
                np.testing.assert_allclose(out.sum(0), np.ones(spatial), rtol=0, atol=1e-5, err_msg=name)

    @parameterized.expand(PROPERTY_CASES)
    def test_binary_equals_two_channels(self, method, spatial, seed):
        y = _random_labels(spatial, seed)["binary"]
        smooth = LabelSmoothing(method=method, epsilon=0.3, width=1)
        np.testing.assert_allclose(smooth(y), smooth(np.concatenate([1 - y, y]))[1:], rtol=1e-5, atol=1e-6)

    @parameterized.expand(PROPERTY_CASES)
    def test_integer_map_equals_onehot(self, method, spatial, seed):
        onehot = _random_labels(spatial, seed)["onehot"]
        labels = onehot.argmax(0)[None]
        for dtype in (np.int64, np.uint8, np.float32):
            out = LabelSmoothing(method=method, epsilon=0.3, num_classes=3, width=1)(labels.astype(dtype))
            self.assertEqual(out.dtype, np.float32)
            np.testing.assert_allclose(out, LabelSmoothing(method=method, epsilon=0.3, width=1)(onehot), rtol=1e-6)

    @parameterized.expand([[m, s, seed] for m, s, seed in PROPERTY_CASES if m != "svls"])
    def test_epsilon_zero_is_identity(self, method, spatial, seed):
        for name, img in _random_labels(spatial, seed).items():
            np.testing.assert_array_equal(LabelSmoothing(method=method, epsilon=0.0)(img), img, err_msg=name)

    @parameterized.expand([[s, seed, w] for (_, s, seed), w in itertools.product(PROPERTY_CASES[:2], (1, 2))])
    def test_boundary_only_near_edges(self, spatial, seed, width):
        # boundary mask computed independently with scipy's max/min filters over the (2 width + 1)^d box
        eps = 0.4
        for name in ("onehot", "blocky", "soft"):
            img = _random_labels(spatial, seed)[name]
            classes = img.argmax(0)
            size = 2 * width + 1
            near = ndimage.maximum_filter(classes, size=size, mode="nearest") != ndimage.minimum_filter(
                classes, size=size, mode="nearest"
            )
            out = LabelSmoothing(method="boundary", epsilon=eps, width=width)(img)
            np.testing.assert_array_equal(out[:, ~near], img[:, ~near], err_msg=name)
            np.testing.assert_allclose(out[:, near], (1 - eps) * img[:, near] + eps / 3, rtol=1e-6, err_msg=name)
            if name == "blocky" and width == 1:
                self.assertTrue((~near).any())

    def test_constant_label_has_no_boundary(self):
        img = np.zeros((1, 4, 4, 4), dtype=np.float32)
        np.testing.assert_array_equal(LabelSmoothing(method="boundary", epsilon=0.5)(img), img)
        np.testing.assert_allclose(LabelSmoothing(method="svls")(img), img, atol=1e-7)


class TestLabelSmoothingTypes(unittest.TestCase):
    @parameterized.expand([[m] for m in METHODS])
    def test_types_and_meta(self, method):
        img = _random_labels((5, 4, 3), 2)["onehot"]
        expected = LabelSmoothing(method=method, width=1)(img)
        for convert in TEST_NDARRAYS:
            x = convert(img)
            out = LabelSmoothing(method=method, width=1)(x)
            # as in MONAI, a torch input comes back as a MetaTensor while get_track_meta() is True
            self.assertIsInstance(out, MetaTensor if isinstance(x, torch.Tensor) else np.ndarray)
            np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-5, atol=1e-6)
            if isinstance(x, torch.Tensor):
                self.assertEqual(out.device, x.device)
            if isinstance(x, MetaTensor):
                assert isinstance(out, MetaTensor)
                np.testing.assert_array_equal(to_numpy(out.affine), to_numpy(x.affine))
                self.assertEqual(out.meta["filename_or_obj"], "label.nii.gz")

    def test_no_meta_tracking(self):
        set_track_meta(False)
        try:
            out = LabelSmoothing()(_as_meta(SQUARE))
            self.assertIs(type(out), torch.Tensor)
            self.assertIs(type(LabelSmoothing()(torch.as_tensor(SQUARE))), torch.Tensor)
        finally:
            set_track_meta(True)

    def test_integer_metatensor_keeps_meta(self):
        x = _as_meta(np.array([[[0, 1], [2, 1]]]))
        out = LabelSmoothing(num_classes=3)(x)
        self.assertIsInstance(out, MetaTensor)
        self.assertEqual(tuple(out.shape), (3, 2, 2))
        self.assertEqual(out.dtype, torch.float32)
        np.testing.assert_array_equal(to_numpy(out.affine), to_numpy(AFFINE))

    def test_float64_and_bool(self):
        out = LabelSmoothing()(torch.tensor([[[0.0, 1.0]]], dtype=torch.float64))
        self.assertEqual(out.dtype, torch.float32)
        out = LabelSmoothing(epsilon=0.5)(np.array([[[False, True]]]))
        np.testing.assert_allclose(out, [[[0.25, 0.75]]])


class TestLabelSmoothingd(unittest.TestCase):
    @parameterized.expand([[m] for m in METHODS])
    def test_same_as_array(self, method):
        labels = _random_labels((6, 7), 3)
        kwargs = {"method": method, "epsilon": 0.2, "width": 1, "sigma": 0.8, "kernel_size": 5}
        out = LabelSmoothingd(keys=["onehot", "binary"], **kwargs)(labels)
        for key in ("onehot", "binary"):
            np.testing.assert_array_equal(out[key], LabelSmoothing(**kwargs)(labels[key]))
        np.testing.assert_array_equal(out["soft"], labels["soft"])  # other keys untouched

    def test_aliases_and_missing_keys(self):
        self.assertIs(LabelSmoothingD, LabelSmoothingd)
        self.assertIs(LabelSmoothingDict, LabelSmoothingd)
        data = {"label": np.array([[[0.0, 1.0]]], dtype=np.float32)}
        with self.assertRaises(KeyError):
            LabelSmoothingd(keys=["label", "other"])(data)
        out = LabelSmoothingd(keys=["label", "other"], epsilon=0.5, allow_missing_keys=True)(data)
        np.testing.assert_allclose(out["label"], [[[0.25, 0.75]]])
        self.assertNotIn("other", out)
        np.testing.assert_array_equal(data["label"], [[[0.0, 1.0]]])  # input dict not modified

    def test_compose_and_meta(self):
        t = Compose([LabelSmoothingd(keys="label", method="svls"), LabelSmoothingd(keys="seg", num_classes=2)])
        out = t({"label": _as_meta(SQUARE), "seg": np.array([[[0, 1]]])})
        self.assertIsInstance(out["label"], MetaTensor)
        np.testing.assert_array_equal(to_numpy(out["label"].affine), to_numpy(AFFINE))
        np.testing.assert_allclose(out["seg"], [[[0.95, 0.05]], [[0.05, 0.95]]], rtol=1e-5)

    def test_bundle_config(self):
        parser = ConfigParser(
            {"t": {"_target_": "monai_dml.transforms.smoothing.LabelSmoothingd", "keys": "label", "method": "svls"}}
        )
        t = parser.get_parsed_content("t")
        self.assertIsInstance(t, LabelSmoothingd)
        np.testing.assert_allclose(t({"label": SQUARE})["label"], LabelSmoothing(method="svls")(SQUARE))

    def test_init_errors(self):
        with self.assertRaisesRegex(ValueError, "epsilon"):
            LabelSmoothingd(keys="label", epsilon=1.0)
        with self.assertRaisesRegex(ValueError, "kernel_size"):
            LabelSmoothingd(keys="label", kernel_size=2)


INIT_ERROR_CASES = [
    [{"epsilon": 1.0}, "epsilon must be .*got 1.0"],
    [{"epsilon": -0.1}, "epsilon must be .*got -0.1"],
    [{"epsilon": float("nan")}, "epsilon"],
    [{"epsilon": "0.1"}, "epsilon"],
    [{"width": 0}, "width must be .*got 0"],
    [{"width": 1.5}, "width"],
    [{"kernel_size": 4}, "kernel_size must be .*got 4"],
    [{"kernel_size": 1}, "kernel_size"],
    [{"sigma": 0.0}, "sigma must be .*got 0.0"],
    [{"sigma": -1.0}, "sigma"],
    [{"sigma": float("inf")}, "sigma"],
    [{"num_classes": 1}, "num_classes must be .*got 1"],
    [{"num_classes": 2.0}, "num_classes"],
    [{"method": "svl"}, "svl"],
]

CALL_ERROR_CASES = [
    # shape: (2, 1, 2) with NaN / Inf
    [{}, [[[np.nan, 0.0]], [[0.0, 1.0]]], "img contains NaN or Inf"],
    [{}, [[[np.inf, 0.0]], [[0.0, 1.0]]], "img contains NaN or Inf"],
    [{"num_classes": 2}, [[[np.nan, 0.0]]], "img contains NaN or Inf"],
    # values outside [0, 1]
    [{}, [[[-0.5, 1.0]], [[1.5, 0.0]]], r"img must hold probabilities in \[0, 1\].*got values in \[-0.5, 1.5\]"],
    [{}, [[[0.0, 2.0]]], r"img must hold probabilities .*\[0, 2\].*num_classes"],
    # channels not summing to 1
    [{}, [[[0.5, 0.5]], [[0.4, 0.5]]], r"img channels must sum to 1.*\[0.9, 1\]"],
    [{}, [[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 0.0]]], "sum to 1"],
    # integer map outside [0, num_classes) or not integer
    [{"num_classes": 3}, [[[0, 3]]], r"num_classes=3, got values in \[0, 3\]"],
    [{"num_classes": 3}, [[[-1, 2]]], "num_classes=3"],
    [{"num_classes": 3}, [[[0.5, 1.0]]], "num_classes=3"],
    [{"num_classes": 2}, [[[0, 1]], [[1, 0]]], "single-channel.*num_classes"],
    # wrong number of spatial dimensions
    [{}, [[0.0, 1.0]], r"img must .* 2 or 3 spatial dimensions.*\(1, 2\)"],
    [{}, np.zeros((1, 2, 2, 2, 2)), "img must .* 2 or 3 spatial dimensions"],
]


class TestLabelSmoothingErrors(unittest.TestCase):
    @parameterized.expand(INIT_ERROR_CASES)
    def test_init_errors(self, kwargs, regex):
        with self.assertRaisesRegex(ValueError, regex):
            LabelSmoothing(**kwargs)

    @parameterized.expand(CALL_ERROR_CASES)
    def test_call_errors(self, kwargs, img, regex):
        for convert in TEST_NDARRAYS:
            with self.assertRaisesRegex(ValueError, regex):
                LabelSmoothing(**kwargs)(convert(np.asarray(img)))

    def test_call_override_errors(self):
        img = np.array([[[0.0, 1.0]]])
        with self.assertRaisesRegex(ValueError, "epsilon must be .*got 1.5"):
            LabelSmoothing()(img, epsilon=1.5)
        with self.assertRaisesRegex(ValueError, "unifrm"):
            LabelSmoothing()(img, method="unifrm")

    def test_svls_ignores_epsilon(self):
        img = SQUARE
        np.testing.assert_array_equal(
            LabelSmoothing(method="svls", epsilon=0.0)(img), LabelSmoothing(method="svls", epsilon=0.9)(img)
        )


if __name__ == "__main__":
    unittest.main()
