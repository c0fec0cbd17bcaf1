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

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import SaveImage

from monai_dml.transforms import TeacherTarget, TeacherTargetd


class TestTeacherTarget(unittest.TestCase):
    def test_temperature(self):
        p = torch.tensor([[[0.25, 0.5]], [[0.75, 0.5]]])
        # T = 0.5: q = p^2 / sum p^2 -> 0.0625 / 0.625 = 0.1, 0.5625 / 0.625 = 0.9
        np.testing.assert_allclose(np.asarray(TeacherTarget(0.5)(p)), [[[0.1, 0.5]], [[0.9, 0.5]]], rtol=1e-5)
        # T = 2: q = sqrt(p) / sum sqrt(p): 0.5 / (0.5 + 0.866025) = 0.366025
        np.testing.assert_allclose(float(TeacherTarget(2.0)(p)[0, 0, 0]), 0.5 / (0.5 + 0.75**0.5), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(TeacherTarget(1.0)(p)), p.numpy())

    def test_binary(self):
        p = torch.tensor([[[0.2, 0.5, 1.0]]])
        # T = 0.5: 0.04 / (0.04 + 0.64) = 0.058824
        out = np.asarray(TeacherTarget(0.5)(p))
        np.testing.assert_allclose(out, [[[0.04 / 0.68, 0.5, 1.0]]], rtol=1e-5)

    def test_meta_and_numpy(self):
        p = MetaTensor(torch.full((2, 3, 3), 0.5), affine=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0])))
        out = TeacherTarget(0.7)(p)
        self.assertIsInstance(out, MetaTensor)
        np.testing.assert_allclose(out.affine.numpy(), p.affine.numpy())
        self.assertIsInstance(TeacherTarget(0.7)(np.full((2, 3), 0.5, dtype=np.float32)), np.ndarray)

    def test_errors(self):
        for t in (0.0, -1.0, float("inf")):
            with self.assertRaisesRegex(ValueError, "temperature"):
                TeacherTarget(t)
        with self.assertRaisesRegex(ValueError, r"img must hold probabilities in \[0, 1\]"):
            TeacherTarget()(torch.tensor([[1.5, 0.2]]))
        with self.assertRaisesRegex(ValueError, "channels must sum to 1"):
            TeacherTarget()(torch.tensor([[0.5, 0.2], [0.2, 0.2]]))
        with self.assertRaisesRegex(ValueError, "NaN"):
            TeacherTarget()(torch.tensor([[float("nan"), 0.2]]))


class TestTeacherTargetd(unittest.TestCase):
    def test_from_npy_and_nifti(self):
        probs = torch.softmax(torch.randn(3, 6, 5, 4, generator=torch.Generator().manual_seed(0)), 0)  # a 3D volume
        with tempfile.TemporaryDirectory() as tmp:
            npy = os.path.join(tmp, "teacher.npy")
            np.save(npy, probs.numpy())
            out = TeacherTargetd("teacher", output_keys="label", temperature=1.0)({"teacher": npy})
            np.testing.assert_allclose(np.asarray(out["label"]), probs.numpy(), rtol=1e-6)
            SaveImage(output_dir=tmp, output_postfix="", separate_folder=False, print_log=False)(
                MetaTensor(probs, meta={"filename_or_obj": "case01"})
            )
            nii = os.path.join(tmp, "case01.nii.gz")
            out = TeacherTargetd("teacher", output_keys="label")({"teacher": nii})
            np.testing.assert_allclose(np.asarray(out["label"]), probs.numpy(), rtol=1e-5, atol=1e-6)
            with self.assertRaisesRegex(FileNotFoundError, "missing.npy"):
                TeacherTargetd("teacher")({"teacher": os.path.join(tmp, "missing.npy")})
            bad = os.path.join(tmp, "bad.npy")
            np.save(bad, np.full((2, 3), 2.0))
            with self.assertRaisesRegex(ValueError, "teacher key 'teacher' .*bad.npy.*probabilities"):
                TeacherTargetd("teacher")({"teacher": bad})

    def test_array_value(self):
        out = TeacherTargetd("teacher", temperature=0.5)({"teacher": torch.tensor([[[0.25]], [[0.75]]])})
        np.testing.assert_allclose(np.asarray(out["teacher"]).ravel(), [0.1, 0.9], rtol=1e-5)


if __name__ == "__main__":
    unittest.main()
