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
import tempfile
import unittest

import nibabel as nib
import numpy as np

from monai_dml.transforms import LoadRaters, LoadRatersd


class TestLoadRaters(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.affine = np.diag([0.8, 0.8, 2.0, 1.0])

    def tearDown(self):
        self.tmp.cleanup()

    def _write(self, name, shape=(6, 5), affine=None, value=1):
        path = os.path.join(self.dir, name)
        data = np.zeros(shape, dtype=np.uint8)
        data[: shape[0] // 2] = value
        nib.save(nib.Nifti1Image(data, self.affine if affine is None else affine), path)
        return path

    def test_stack(self):
        files = [self._write(f"task01_seg0{i}.nii.gz") for i in range(1, 4)]
        out = LoadRaters()(files)
        self.assertEqual(tuple(out.shape), (3, 6, 5))
        np.testing.assert_allclose(out.affine.numpy(), self.affine)
        self.assertEqual(out.meta["rater_files"], files)
        d = LoadRatersd("raters")({"raters": files, "image": "x"})
        self.assertEqual(tuple(d["raters"].shape), (3, 6, 5))

    def test_missing_file(self):
        files = [self._write("seg01.nii.gz"), os.path.join(self.dir, "seg02.nii.gz")]
        with self.assertRaisesRegex(FileNotFoundError, "seg02.nii.gz"):
            LoadRaters()(files)

    def test_unreadable_file(self):
        bad = os.path.join(self.dir, "seg02.nii.gz")
        with open(bad, "wb") as f:
            f.write(b"not a nifti file")
        with self.assertRaisesRegex(ValueError, "could not read rater file .*seg02.nii.gz"):
            LoadRaters()([self._write("seg01.nii.gz"), bad])

    def test_mismatched_shape_and_affine(self):
        a = self._write("seg01.nii.gz")
        b = self._write("seg02.nii.gz", shape=(6, 4))
        with self.assertRaisesRegex(ValueError, r"seg02.nii.gz has shape \(6, 4\) but .*seg01.nii.gz has \(6, 5\)"):
            LoadRaters()([a, b])
        c = self._write("seg03.nii.gz", affine=np.diag([1.0, 0.8, 2.0, 1.0]))
        with self.assertRaisesRegex(ValueError, "seg03.nii.gz has another affine than .*seg01.nii.gz"):
            LoadRaters()([a, c])

    def test_empty(self):
        with self.assertRaisesRegex(ValueError, "R = 0"):
            LoadRaters()([])


if __name__ == "__main__":
    unittest.main()
