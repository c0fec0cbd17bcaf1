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

import json
import os
import tempfile
import unittest
from unittest import mock

import nibabel as nib
import numpy as np
import torch

from monai_dml.data import (
    KITS_HU_WINDOW,
    axial_axis,
    build_slice_index,
    ct_2d_transforms,
    ct_3d_transforms,
    generate_kits,
    generate_lits,
    kits_datalist,
    lits_datalist,
    load_datalist,
    slices as slices_module,
    write_ct_volume,
    write_datalist,
)
from monai_dml.transforms import RaterFusiond

SIZE, DEPTH = 24, 16


def _labels(path):
    return set(np.unique(np.asanyarray(nib.load(path).dataobj)).astype(int).tolist())


class TestLits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.lits = generate_lits(os.path.join(cls.tmp.name, "lits"), 6, SIZE, DEPTH)
        cls.msd = generate_lits(os.path.join(cls.tmp.name, "msd"), 6, SIZE, DEPTH, msd=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_lits_form(self):
        data = lits_datalist(self.lits)
        self.assertEqual([e["case"] for e in data], [f"volume-{i}" for i in range(6)])
        self.assertEqual([e["fold"] for e in data], [0, 1, 2, 3, 4, 4])
        self.assertTrue(data[0]["image"].endswith(".nii") and data[0]["label"].endswith(".nii"))  # uncompressed
        self.assertIn("Training Batch 2", data[-1]["image"])
        self.assertEqual(_labels(data[0]["label"]), {0, 1, 2})
        self.assertEqual(_labels(data[1]["label"]), {0, 1})  # an empty tumour label
        self.assertEqual(nib.load(data[0]["image"]).shape, (SIZE, SIZE, DEPTH))  # axial last
        self.assertEqual(axial_axis(nib.load(data[0]["image"]).affine), 2)

    def test_msd_form(self):
        images = os.path.join(self.msd, "Task03_Liver", "imagesTr")
        with open(os.path.join(images, "._liver_0.nii.gz"), "wb") as f:  # a macOS resource fork, as in the archive
            f.write(b"\x00\x05\x16\x07")
        data = lits_datalist(self.msd)
        self.assertEqual([e["case"] for e in data], [f"liver_{i}" for i in range(6)])
        self.assertTrue(data[0]["label"].endswith(os.path.join("labelsTr", "liver_0.nii.gz")))

    def test_slices_and_2d_chain(self):
        data = lits_datalist(self.lits)
        with tempfile.TemporaryDirectory() as tmp, self.assertWarnsRegex(UserWarning, r"volume-1"):
            index = build_slice_index(data, cache_file=os.path.join(tmp, "index.json"), progress=False)
        self.assertTrue(index and all(e["axis"] == 2 for e in index))
        self.assertNotIn("volume-1", {e["case"] for e in index})
        for entry in index[:3]:
            label = np.asanyarray(nib.load(entry["label"]).dataobj)[:, :, entry["slice"]]
            self.assertIn(2, label)
        out = ct_2d_transforms(size=32)(index[0])
        self.assertEqual(tuple(out["image"].shape), (1, 32, 32))
        self.assertEqual(tuple(out["label"].shape), (1, 32, 32))
        self.assertTrue(float(out["image"].min()) >= 0.0 and float(out["image"].max()) <= 1.0)
        self.assertIn(2.0, torch.unique(out["label"]).tolist())
        self.assertTrue(set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0, 2.0})

    def test_slice_cache(self):
        data = lits_datalist(self.lits)[:3]
        with tempfile.TemporaryDirectory() as tmp:
            cache = os.path.join(tmp, "index.json")
            with self.assertWarns(UserWarning):
                first = build_slice_index(data, cache_file=cache, progress=False)
            with open(cache) as f:
                self.assertEqual(json.load(f)["labels"], [2])
            reread = mock.patch.object(slices_module, "_volume_slices", side_effect=AssertionError("re-read"))
            with reread, self.assertWarns(UserWarning):
                self.assertEqual(build_slice_index(data, cache_file=cache, progress=False), first)
            liver = build_slice_index(data, labels=(1, 2), cache_file=cache, progress=False)  # another selection
            self.assertGreater(len(liver), len(first))

    def test_datalist_json(self):
        data = lits_datalist(self.lits)
        with tempfile.TemporaryDirectory() as tmp:
            path = write_datalist(data, os.path.join(tmp, "lists", "lits.json"), base_dir=self.lits)
            with open(path) as f:
                self.assertFalse(os.path.isabs(json.load(f)["training"][0]["image"]))
            self.assertEqual(load_datalist(path, base_dir=self.lits), data)
            path = write_datalist(data, os.path.join(self.tmp.name, "lits_fold0.json"), fold=0)
            self.assertEqual(load_datalist(path, "validation"), [e for e in data if e["fold"] == 0])
            self.assertEqual(len(load_datalist(path)), len(data) - 1)
            with self.assertRaisesRegex(ValueError, "has no list 'testing'"):
                load_datalist(path, "testing")
            with self.assertRaisesRegex(FileNotFoundError, "nothing.json"):
                load_datalist(os.path.join(tmp, "nothing.json"))


class TestKits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.k19 = generate_kits(os.path.join(cls.tmp.name, "k19"), 6, SIZE, DEPTH)
        cls.k21 = generate_kits(os.path.join(cls.tmp.name, "k21"), 6, SIZE, DEPTH, instances=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_kits19(self):
        data = kits_datalist(self.k19)
        self.assertEqual([e["case"] for e in data], [f"case_{i:05d}" for i in range(6)])
        self.assertNotIn("annotations", data[0])
        self.assertEqual(nib.load(data[0]["image"]).shape, (DEPTH, SIZE, SIZE))  # axial first
        self.assertEqual(_labels(data[1]["label"]), {0, 1})  # an empty tumour label
        with self.assertWarns(UserWarning):
            index = build_slice_index(data, progress=False)
        self.assertTrue(all(e["axis"] == 0 for e in index))
        out = ct_2d_transforms(KITS_HU_WINDOW, size=32)(index[0])
        self.assertIn(2.0, torch.unique(out["label"]).tolist())
        out = ct_3d_transforms()(data[0])
        self.assertEqual(tuple(out["image"].shape), (1, SIZE, SIZE, DEPTH))  # RAS: axial last again

    def test_kits21_annotations(self):
        data = kits_datalist(self.k21)
        ann = data[0]["annotations"]
        self.assertEqual(sorted(ann), ["kidney", "tumor"])
        self.assertEqual([len(files) for files in ann["kidney"]], [3, 3])  # two kidneys, three annotations each
        self.assertTrue(ann["tumor"][0][2].endswith("tumor_instance-1_annotation-3.nii.gz"))
        self.assertEqual(sorted(data[1]["annotations"]), ["kidney"])  # the tumour-free case
        out = ct_3d_transforms(annotation_key="annotations")(data[0])
        self.assertEqual(tuple(out["raters"].shape), (3, SIZE, SIZE, DEPTH))
        self.assertEqual(set(torch.unique(out["raters"]).tolist()), {0.0, 1.0, 2.0})
        fused = RaterFusiond("raters", output_key="soft", method="uniform", num_classes=3)(out)["soft"]
        self.assertEqual(tuple(fused.shape), (3, SIZE, SIZE, DEPTH))
        torch.testing.assert_close(fused.sum(0), torch.ones(SIZE, SIZE, DEPTH))
        majority = RaterFusiond("raters", output_key="maj", method="majority", num_classes=3)(out)["maj"]
        torch.testing.assert_close(majority.argmax(0).float(), out["label"][0])  # segmentation = majority vote
        index = build_slice_index(data[:1], progress=False)
        out2d = ct_2d_transforms(KITS_HU_WINDOW, size=32, annotation_key="annotations")(index[0])
        self.assertEqual(tuple(out2d["raters"].shape), (3, 32, 32))

    def test_orientations_agree(self):
        # the same physical volume stored LiTS-style (axial last) and KiTS-style (axial first) preprocesses equally
        rng = np.random.default_rng(0)
        volume = rng.integers(-200, 300, (SIZE, SIZE - 4, DEPTH)).astype(np.int16)
        label = (volume > 200).astype(np.uint8)
        with tempfile.TemporaryDirectory() as tmp:
            entries = []
            for axial_first in (False, True):
                entry = {k: os.path.join(tmp, f"{k}_{axial_first}.nii.gz") for k in ("image", "label")}
                write_ct_volume(volume, entry["image"], (1.5, 1.5, 3.0), axial_first)
                write_ct_volume(label, entry["label"], (1.5, 1.5, 3.0), axial_first)
                entries.append(entry)
            a, b = (ct_3d_transforms()(e) for e in entries)
            torch.testing.assert_close(a["image"].as_tensor(), b["image"].as_tensor())
            torch.testing.assert_close(a["label"].as_tensor(), b["label"].as_tensor())
            index_a, index_b = (build_slice_index([e], labels=(1,), progress=False) for e in entries)
            self.assertEqual((index_a[0]["axis"], index_b[0]["axis"]), (2, 0))
            self.assertEqual(len(index_a), len(index_b))
            s_a, s_b = ct_2d_transforms(size=16)(index_a[3]), ct_2d_transforms(size=16)(index_b[-4])
            torch.testing.assert_close(s_a["image"].as_tensor(), s_b["image"].as_tensor())


class TestCtErrors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.lits = generate_lits(os.path.join(self.tmp.name, "lits"), 6, 16, 8)
        self.kits = generate_kits(os.path.join(self.tmp.name, "kits"), 6, 16, 8)

    def tearDown(self):
        self.tmp.cleanup()

    def test_missing_and_empty(self):
        for reader in (lits_datalist, kits_datalist):
            with self.assertRaisesRegex(FileNotFoundError, "nowhere"):
                reader(os.path.join(self.tmp.name, "nowhere"))
            with tempfile.TemporaryDirectory() as empty, self.assertRaisesRegex(ValueError, "holds no case"):
                reader(empty)

    def test_image_without_label(self):
        os.remove(os.path.join(self.lits, "Training Batch 2", "segmentation-5.nii"))
        with self.assertRaisesRegex(ValueError, r"volume-5: no segmentation-5.nii\[.gz\] for .*volume-5.nii"):
            lits_datalist(self.lits)
        os.remove(os.path.join(self.kits, "case_00002", "segmentation.nii.gz"))
        with self.assertRaisesRegex(ValueError, "case_00002: no segmentation.*incomplete='skip'"):
            kits_datalist(self.kits)
        with self.assertWarnsRegex(UserWarning, "case_00002"):
            self.assertEqual(len(kits_datalist(self.kits, incomplete="skip")), 5)

    def test_shape_mismatch(self):
        path = os.path.join(self.kits, "case_00003", "segmentation.nii.gz")
        nib.save(nib.Nifti1Image(np.zeros((8, 16, 15), np.uint8), np.eye(4)), path)
        with self.assertRaisesRegex(ValueError, r"case_00003.segmentation.nii.gz has shape \(8, 16, 15\) but its"):
            kits_datalist(self.kits)

    def test_corrupt_file(self):
        path = os.path.join(self.lits, "Training Batch 1", "volume-0.nii")
        with open(path, "wb") as f:
            f.write(b"\x00" * 20)
        with self.assertRaisesRegex(ValueError, "could not read the NIfTI header of .*volume-0.nii"):
            lits_datalist(self.lits)


if __name__ == "__main__":
    unittest.main()
