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

import os
import subprocess
import sys
import tempfile
import unittest

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor, set_track_meta
from parameterized import parameterized

from monai_dml import data
from monai_dml.transforms import (
    KITS_LABELS,
    ExtractSlice,
    ExtractSliceD,
    ExtractSliced,
    ExtractSliceDict,
    KiTSAnnotations,
    KiTSAnnotationsD,
    KiTSAnnotationsd,
    KiTSAnnotationsDict,
    PlanarChannels,
    PlanarChannelsD,
    PlanarChannelsd,
    PlanarChannelsDict,
)
from tests.transforms.utils import ndarray_converters, to_numpy

AFFINE = torch.tensor([[2.0, 0, 0, -10], [0, 3.0, 0, 20], [0, 0, 4.0, 30], [0, 0, 0, 1]])


def _as_meta(x):
    x = torch.as_tensor(x)
    meta = {"filename_or_obj": "case01/image.nii.gz", "spatial_shape": tuple(x.shape)}
    return MetaTensor(x, affine=AFFINE.clone(), meta=meta)


TEST_NDARRAYS = ndarray_converters(_as_meta)


# ---- PlanarChannels: [init_kwargs, img, expected] ----
PLANAR_CASES = [
    # shape: (2, 3) -> (1, 2, 3), a channel axis in front
    [{}, [[1, 2, 3], [4, 5, 6]], [[[1, 2, 3], [4, 5, 6]]]],
    # shape: (2, 2, 1) -> (1, 2, 2), the trailing singleton becomes the channel
    [{}, [[[1], [2]], [[3], [4]]], [[[1, 2], [3, 4]]]],
    # shape: (2, 2, 2) -> (2, 2, 2), img[h, w, c] -> out[c, h, w]: channel 0 holds 1-4, channel 1 holds 10-40
    [{}, [[[1, 10], [2, 20]], [[3, 30], [4, 40]]], [[[1, 2], [3, 4]], [[10, 20], [30, 40]]]],
    # shape: (1, 2, 3) with max_channels=3 -> (3, 1, 2)
    [{"max_channels": 3}, [[[1, 2, 3], [4, 5, 6]]], [[[1, 4]], [[2, 5]], [[3, 6]]]],
    # shape: (2, 1, 2, 1) rater stack -> (2, 1, 2), the trailing singleton dropped
    [{"stacked": True}, [[[[0], [1]]], [[[1], [1]]]], [[[0, 1]], [[1, 1]]]],
    # shape: (2, 1, 2) rater stack, already channel-first: unchanged
    [{"stacked": True}, [[[0, 1]], [[1, 1]]], [[[0, 1]], [[1, 1]]]],
]

PLANAR_ERRORS = [
    # shape: (2, 2, 5): a last axis above max_channels=4 is a volume
    [{}, np.zeros((2, 2, 5)), r"img must be a 2D slice \(H, W\) or \(H, W, C<=4\), got shape \(2, 2, 5\)"],
    [{}, np.zeros((2, 2, 1, 1)), r"got shape \(2, 2, 1, 1\)"],
    [{}, np.zeros(4), r"got shape \(4,\)"],
    [{"stacked": True}, np.zeros((2, 2)), r"\(R, H, W\) or \(R, H, W, 1\), got shape \(2, 2\)"],
    [{"stacked": True}, np.zeros((2, 2, 2, 3)), r"got shape \(2, 2, 2, 3\)"],
]


class TestPlanarChannels(unittest.TestCase):
    @parameterized.expand(PLANAR_CASES)
    def test_hand_values(self, init_kwargs, img, expected):
        for p in TEST_NDARRAYS:
            out = PlanarChannels(**init_kwargs)(p(np.asarray(img, dtype=np.float32)))
            self.assertIsInstance(out, np.ndarray if p is np.asarray else torch.Tensor)  # NumPy in, NumPy out
            np.testing.assert_allclose(to_numpy(out), np.asarray(expected, dtype=np.float32), rtol=1e-3)

    def test_meta(self):
        img = _as_meta(torch.arange(6.0).reshape(2, 3, 1))  # a QUBIQ slice stored as (H, W, 1)
        out = PlanarChannels()(img)
        self.assertIsInstance(out, MetaTensor)
        self.assertEqual(tuple(out.shape), (1, 2, 3))
        torch.testing.assert_close(out.affine, AFFINE.double())
        self.assertEqual(out.meta["filename_or_obj"], "case01/image.nii.gz")
        self.assertNotIn("spatial_shape", out.meta)  # the file's (2, 3, 1) no longer describes the array
        self.assertEqual(img.meta["spatial_shape"], (2, 3, 1))  # the input's metadata is left alone
        stack = _as_meta(torch.zeros(3, 2, 3))
        self.assertIs(PlanarChannels(stacked=True)(stack), stack)  # already (R, H, W): untouched

    def test_no_meta_tracking(self):
        set_track_meta(False)
        try:
            out = PlanarChannels()(_as_meta(torch.zeros(2, 3)))
        finally:
            set_track_meta(True)
        self.assertNotIsInstance(out, MetaTensor)
        self.assertIsInstance(out, torch.Tensor)

    @parameterized.expand(PLANAR_ERRORS)
    def test_errors(self, init_kwargs, img, regex):
        with self.assertRaisesRegex(ValueError, regex):
            PlanarChannels(**init_kwargs)(img)

    def test_init_errors(self):
        with self.assertRaisesRegex(ValueError, "max_channels must be >= 1, got 0"):
            PlanarChannels(max_channels=0)
        with self.assertRaisesRegex(ValueError, "max_channels"):
            PlanarChannelsd("image", max_channels=0)


class TestPlanarChannelsd(unittest.TestCase):
    @parameterized.expand(PLANAR_CASES)
    def test_same_as_array(self, init_kwargs, img, expected):
        for p in TEST_NDARRAYS:
            value = p(np.asarray(img, dtype=np.float32))
            out = PlanarChannelsd("image", **init_kwargs)({"image": value, "case": "c1"})
            self.assertEqual(out["case"], "c1")
            array = PlanarChannels(**init_kwargs)(value)
            np.testing.assert_allclose(to_numpy(out["image"]), to_numpy(array), rtol=1e-3)
            np.testing.assert_allclose(to_numpy(out["image"]), np.asarray(expected, dtype=np.float32), rtol=1e-3)

    def test_meta_and_keys(self):
        entry = {"image": _as_meta(torch.zeros(2, 3, 4)), "raters": _as_meta(torch.zeros(3, 2, 3, 1))}
        out = PlanarChannelsd("raters", stacked=True)(PlanarChannelsd("image")(entry))
        self.assertEqual((tuple(out["image"].shape), tuple(out["raters"].shape)), ((4, 2, 3), (3, 2, 3)))
        for key in ("image", "raters"):
            self.assertNotIn("spatial_shape", out[key].meta)
            torch.testing.assert_close(out[key].affine, AFFINE.double())
        self.assertIn("spatial_shape", entry["image"].meta)

    def test_aliases_and_missing_keys(self):
        self.assertIs(PlanarChannelsD, PlanarChannelsd)
        self.assertIs(PlanarChannelsDict, PlanarChannelsd)
        self.assertIs(data.PlanarChannelsd, PlanarChannelsd)  # re-exported where bundles import it
        self.assertEqual(PlanarChannelsd("label", allow_missing_keys=True)({"image": 1}), {"image": 1})
        with self.assertRaises(KeyError):
            PlanarChannelsd("label")({"image": np.zeros((2, 3))})

    def test_error_names_key(self):
        with self.assertRaisesRegex(ValueError, r"key 'image': img must be a 2D slice .*got shape \(4, 5, 6, 7\)"):
            PlanarChannelsd("image")({"image": np.zeros((4, 5, 6, 7))})


# ---- ExtractSlice: the volume (1, 2, 3, 4) holds 0..23 in C order, v[0, x, y, z] = 12 x + 4 y + z ----
VOLUME = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
SLICE_CASES = [
    # x = 1: 12 + 4 y + z -> shape (1, 1, 3, 4)
    [1, 0, [[[[12, 13, 14, 15], [16, 17, 18, 19], [20, 21, 22, 23]]]]],
    # y = 2: 12 x + 8 + z -> shape (1, 2, 1, 4)
    [2, 1, [[[[8, 9, 10, 11]], [[20, 21, 22, 23]]]]],
    # z = 3: 12 x + 4 y + 3 -> shape (1, 2, 3, 1)
    [3, 2, [[[[3], [7], [11]], [[15], [19], [23]]]]],
    # axis -1 is axis 2
    [0, -1, [[[[0], [4], [8]], [[12], [16], [20]]]]],
]


class TestExtractSlice(unittest.TestCase):
    @parameterized.expand(SLICE_CASES)
    def test_hand_values(self, index, axis, expected):
        for p in TEST_NDARRAYS:
            for out in (ExtractSlice(index, axis)(p(VOLUME)), ExtractSlice()(p(VOLUME), index=index, axis=axis)):
                self.assertIsInstance(out, np.ndarray if p is np.asarray else torch.Tensor)
                np.testing.assert_allclose(to_numpy(out), np.asarray(expected, dtype=np.float32), rtol=1e-3)

    def test_call_overrides_init(self):
        out = ExtractSlice(index=0, axis=0)(torch.as_tensor(VOLUME), index=1)
        np.testing.assert_allclose(to_numpy(out), VOLUME[:, 1:2])
        out = ExtractSlice(index=3, axis=0)(torch.as_tensor(VOLUME), axis=2)
        np.testing.assert_allclose(to_numpy(out), VOLUME[..., 3:4])

    def test_affine_follows(self):
        out = ExtractSlice(index=1, axis=0)(_as_meta(VOLUME))
        self.assertIsInstance(out, MetaTensor)
        expected = AFFINE.double().clone()
        expected[0, 3] += 1 * 2.0  # one voxel of 2 mm along x
        torch.testing.assert_close(out.affine, expected)
        self.assertEqual(out.meta["filename_or_obj"], "case01/image.nii.gz")
        out = ExtractSlice(index=2, axis=2)(_as_meta(VOLUME))
        expected = AFFINE.double().clone()
        expected[2, 3] += 2 * 4.0  # two voxels of 4 mm along z
        torch.testing.assert_close(out.affine, expected)

    @parameterized.expand(
        [
            [{}, VOLUME, r"index and axis must be given to __init__ or __call__, got index=None and axis=None"],
            [{"index": 0}, VOLUME, "axis=None"],
            [{"index": 0, "axis": 3}, VOLUME, "axis must be a spatial axis .* got 3"],
            [{"index": 2, "axis": 0}, VOLUME, r"slice 2 on axis 0 is outside the volume of shape \(2, 3, 4\)"],
            [{"index": -1, "axis": 1}, VOLUME, r"slice -1 on axis 1 is outside the volume of shape \(2, 3, 4\)"],
            [{"index": 0, "axis": 0}, VOLUME[0], r"outside the volume of shape \(3, 4\)"],  # (C, X, Y): no Z
        ]
    )
    def test_errors(self, init_kwargs, img, regex):
        with self.assertRaisesRegex(ValueError, regex):
            ExtractSlice(**init_kwargs)(img)


class TestExtractSliced(unittest.TestCase):
    @parameterized.expand(SLICE_CASES)
    def test_same_as_array(self, index, axis, expected):
        for p in TEST_NDARRAYS:
            entry = {"image": p(VOLUME), "label": p(VOLUME + 1), "slice": index, "axis": axis}
            out = ExtractSliced(["image", "label"])(entry)
            np.testing.assert_allclose(to_numpy(out["image"]), np.asarray(expected, dtype=np.float32), rtol=1e-3)
            np.testing.assert_allclose(to_numpy(out["label"]), np.asarray(expected, dtype=np.float32) + 1, rtol=1e-3)
            self.assertEqual((out["slice"], out["axis"]), (index, axis))

    def test_keys_and_aliases(self):
        entry = {"image": _as_meta(VOLUME), "at": "1", "along": 0}  # the index may come as a string (JSON)
        out = ExtractSliced("image", slice_key="at", axis_key="along")(entry)
        self.assertEqual(tuple(out["image"].shape), (1, 1, 3, 4))
        torch.testing.assert_close(out["image"].affine[0, 3], torch.tensor(-8.0, dtype=torch.float64))
        self.assertIs(ExtractSliceD, ExtractSliced)
        self.assertIs(ExtractSliceDict, ExtractSliced)
        self.assertIs(data.ExtractSliced, ExtractSliced)
        self.assertNotIn("label", ExtractSliced("label", allow_missing_keys=True)({"slice": 0, "axis": 0}))

    def test_errors(self):
        with self.assertRaisesRegex(KeyError, "axis"):
            ExtractSliced("image")({"image": VOLUME, "slice": 0})
        with self.assertRaisesRegex(ValueError, r"key 'label': slice 3 on axis 0 is outside .* shape \(3, 4, 4\)"):
            ExtractSliced(["image", "label"])(
                {"image": np.zeros((1, 4, 4, 4)), "label": np.zeros((1, 3, 4, 4)), "slice": 3, "axis": 0}
            )


# ---- KiTSAnnotations: 2D (2, 3) annotation masks, hand-painted ----
KIDNEY_1 = [[[1, 1, 0], [0, 0, 0]], [[1, 1, 1], [0, 0, 0]], [[1, 0, 0], [0, 0, 0]]]  # three annotators
KIDNEY_2 = [[[0, 0, 0], [0, 0, 1]]]  # one annotation, reused by every annotator
TUMOR_1 = [[[0, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]]  # two; annotator 3 reuses the first
# annotator 0: kidney 1 a1 + kidney 2, tumour a1 painted over (0, 1); annotator 1: kidney a2 + kidney 2, empty
# tumour; annotator 2: kidney a3 + kidney 2, tumour a1 again (2 % 2 = 0)
EXPECTED_RATERS = [[[1, 2, 0], [0, 0, 1]], [[1, 1, 1], [0, 0, 1]], [[1, 2, 0], [0, 0, 1]]]


class _AnnotationFiles(unittest.TestCase):
    """Writes the hand-painted annotations of one case; shared by the array and the dictionary tests."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.affine = np.diag([0.8, 0.8, 2.0, 1.0])
        self.annotations = {  # the tumour first: painting follows label values, not the mapping's order
            "tumor": [self._write("tumor", 1, TUMOR_1)],
            "kidney": [self._write("kidney", 1, KIDNEY_1), self._write("kidney", 2, KIDNEY_2)],
        }

    def tearDown(self):
        self.tmp.cleanup()

    def _write(self, structure, instance, masks):
        files = []
        for a, mask in enumerate(masks, start=1):
            path = os.path.join(self.tmp.name, f"{structure}_instance-{instance}_annotation-{a}.nii.gz")
            nib.save(nib.Nifti1Image(np.asarray(mask, dtype=np.uint8), self.affine), path)
            files.append(path)
        return files


class TestKiTSAnnotations(_AnnotationFiles):
    def test_hand_values_and_meta(self):
        out = KiTSAnnotations()(self.annotations)
        self.assertIsInstance(out, MetaTensor)
        self.assertEqual(out.dtype, torch.float32)
        np.testing.assert_allclose(to_numpy(out), np.asarray(EXPECTED_RATERS, dtype=np.float32))
        np.testing.assert_allclose(out.affine.numpy(), self.affine)
        self.assertTrue(str(out.meta["filename_or_obj"]).endswith("tumor_instance-1_annotation-1.nii.gz"))
        self.assertIs(out.meta["annotation_files"], self.annotations)

    def test_label_values(self):
        self.assertEqual(KITS_LABELS, {"background": 0, "kidney": 1, "tumor": 2, "cyst": 3})
        self.assertIs(data.KITS_LABELS, KITS_LABELS)  # one definition, public in both places
        # tumour 2 -> 7 and kidney 1 -> 5, still painted kidney first (by value)
        out = KiTSAnnotations(label_values={"kidney": 5, "tumor": 7})(self.annotations)
        expected = np.asarray(EXPECTED_RATERS, dtype=np.float32)
        np.testing.assert_allclose(to_numpy(out), np.select([expected == 1, expected == 2], [5.0, 7.0], 0.0))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "no label value for structure 'cyst'"):
            KiTSAnnotations(label_values={"kidney": 1})({"cyst": self.annotations["tumor"]})
        with self.assertRaisesRegex(ValueError, "annotations hold no annotation file"):
            KiTSAnnotations()({})
        with self.assertRaisesRegex(ValueError, r"no rater file \(R = 0\)"):
            KiTSAnnotations()({"kidney": [[]]})
        wide = self._write("cyst", 1, [np.zeros((2, 4))])
        message = (
            r"annotation files have different shapes: \S*cyst_instance-1_annotation-1\.nii\.gz has shape \(2, 4\) "
            r"but \S*tumor_instance-1_annotation-1\.nii\.gz has \(2, 3\)"
        )
        with self.assertRaisesRegex(ValueError, message):
            KiTSAnnotations()({**self.annotations, "cyst": [wide]})
        with self.assertRaisesRegex(FileNotFoundError, "kidney_instance-9"):
            KiTSAnnotations()({"kidney": [[os.path.join(self.tmp.name, "kidney_instance-9_annotation-1.nii.gz")]]})


class TestKiTSAnnotationsd(_AnnotationFiles):
    def test_same_as_array(self):
        out = KiTSAnnotationsd("annotations", output_key="raters")({"annotations": self.annotations, "case": "c"})
        self.assertEqual(sorted(out), ["annotations", "case", "raters"])
        np.testing.assert_allclose(to_numpy(out["raters"]), to_numpy(KiTSAnnotations()(self.annotations)))
        out = KiTSAnnotationsd("annotations", output_key="stack", label_values={"kidney": 1, "tumor": 1})(out)
        np.testing.assert_allclose(to_numpy(out["stack"]), np.minimum(EXPECTED_RATERS, 1))

    def test_keys_and_aliases(self):
        self.assertIs(KiTSAnnotationsD, KiTSAnnotationsd)
        self.assertIs(KiTSAnnotationsDict, KiTSAnnotationsd)
        self.assertIs(data.KiTSAnnotationsd, KiTSAnnotationsd)
        self.assertEqual(KiTSAnnotationsd("annotations", allow_missing_keys=True)({"case": "c"}), {"case": "c"})
        with self.assertRaisesRegex(ValueError, r"takes one key, got \('a', 'b'\)"):
            KiTSAnnotationsd(["a", "b"])

    def test_error_names_key(self):
        with self.assertRaisesRegex(ValueError, "key 'annotations': no label value for structure 'cyst'"):
            KiTSAnnotationsd("annotations", label_values={"kidney": 1})({"annotations": {"cyst": [[]]}})


class TestLayering(unittest.TestCase):
    def test_transforms_do_not_import_data(self):
        # transforms sit below data: importing them must not load monai_dml.data (a fresh interpreter)
        code = "import sys, monai_dml.transforms; print([m for m in sys.modules if m.startswith('monai_dml.data')])"
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        self.assertEqual(out.stdout.strip(), "[]")


if __name__ == "__main__":
    unittest.main()
