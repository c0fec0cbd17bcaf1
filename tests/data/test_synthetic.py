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
import torch
from parameterized import parameterized

from monai_dml.data import (
    QUBIQ_SUB_DATASETS,
    RaterNoise,
    generate_dataset,
    generate_qubiq,
    kits_datalist,
    lits_datalist,
    perturb_mask,
    synthesize_qubiq_case,
    write_ct_volume,
)
from monai_dml.data.synthetic import main
from monai_dml.transforms import rater_dice_to_majority


class TestPerturbMask(unittest.TestCase):
    def setUp(self):
        yy, xx = np.mgrid[:40, :40]
        self.truth = (yy - 20) ** 2 + (xx - 20) ** 2 < 100

    def test_no_noise_is_the_truth(self):
        raters = perturb_mask(self.truth, 4, RaterNoise(), np.random.default_rng(0))
        self.assertEqual(raters.shape, (4, 40, 40))
        self.assertEqual(raters.dtype, np.uint8)
        np.testing.assert_array_equal(raters, np.broadcast_to(self.truth, (4, 40, 40)))

    def test_disagreement_grows_with_noise(self):
        noise = RaterNoise(0.05, 0.02, 0.05, 0.5, 0.05, 0.1)
        dice = [
            float(rater_dice_to_majority(perturb_mask(self.truth, 5, noise.scaled(k), np.random.default_rng(1))).mean())
            for k in (1.0, 4.0)
        ]
        self.assertGreater(dice[0], dice[1])

    def test_3d_empty_and_errors(self):
        truth = np.zeros((12, 12, 8), bool)
        self.assertFalse(perturb_mask(truth, 2, RaterNoise(0.1), np.random.default_rng(0)).any())
        truth[4:8, 4:8, 2:6] = True
        self.assertEqual(
            perturb_mask(truth, 2, RaterNoise(0.1, deform=0.1), np.random.default_rng(0)).shape[1:], truth.shape
        )
        with self.assertRaisesRegex(ValueError, "2D or 3D mask, got shape"):
            perturb_mask(np.zeros(5, bool), 2, RaterNoise(), np.random.default_rng(0))
        with self.assertRaisesRegex(ValueError, "num_raters must be at least 1, got 0"):
            perturb_mask(self.truth, 0, RaterNoise(), np.random.default_rng(0))


class TestGenerator(unittest.TestCase):
    def test_table1_default(self):
        # the default (10 cases, 64 x 64, seed 0), in memory
        for key, sub in QUBIQ_SUB_DATASETS.items():
            if sub.target_dice is None:
                continue
            dice = [
                float(
                    rater_dice_to_majority(torch.as_tensor(synthesize_qubiq_case(sub.dataset, i)[1][sub.task])).mean()
                )
                for i in range(10)
            ]
            self.assertLessEqual(abs(100 * np.mean(dice) - sub.target_dice), 2.0, key)

    def test_deterministic(self):
        a = synthesize_qubiq_case("brain-tumor", 3, size=32, seed=5)
        b = synthesize_qubiq_case("brain-tumor", 3, size=32, seed=5)
        c = synthesize_qubiq_case("brain-tumor", 3, size=32, seed=6)
        np.testing.assert_array_equal(a[0], b[0])
        self.assertEqual(a[0].shape, (32, 32, 4))
        for task in (1, 2, 3):
            np.testing.assert_array_equal(a[1][task], b[1][task])
        self.assertFalse(np.array_equal(a[0], c[0]))

    def test_files_deterministic_and_independent_of_case_count(self):
        with tempfile.TemporaryDirectory() as tmp:
            generate_dataset("kits19", os.path.join(tmp, "a"), 3, size=16, depth=8, seed=2)
            generate_dataset("kits19", os.path.join(tmp, "b"), 5, size=16, depth=8, seed=2)
            for name in ("imaging.nii.gz", "segmentation.nii.gz"):
                a, b = (np.asanyarray(nib.load(os.path.join(tmp, d, "case_00002", name)).dataobj) for d in "ab")
                np.testing.assert_array_equal(a, b)
            image = nib.load(os.path.join(tmp, "a", "case_00000", "imaging.nii.gz"))
            self.assertEqual(image.get_data_dtype(), np.int16)
            hu = np.asanyarray(image.dataobj)
            self.assertTrue(hu.min() < -900 and 100 < hu.max() < 3072)  # air and contrast-enhanced kidney

    def test_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaisesRegex(ValueError, "kits21"):
                generate_dataset("kits2l", tmp)
            with self.assertRaisesRegex(ValueError, "num_cases must be at least 1, got 0"):
                generate_dataset("lits", tmp, num_cases=0)
            with self.assertRaisesRegex(ValueError, "size must be at least 16"):
                generate_dataset("qubiq", tmp, size=8)
            with self.assertRaisesRegex(ValueError, "brain-tumor"):
                synthesize_qubiq_case("brain-tumour", 0)

    def test_qubiq_files_hold_the_synthesized_case(self):
        # every written file holds the in-memory case, in QUBIQ's stored shapes (kidney (H, W, 1), brain-tumor's
        # four modalities last), the raters on their image's grid
        with tempfile.TemporaryDirectory() as tmp:
            generate_qubiq(
                tmp, num_cases=2, size=16, datasets=["prostate", "kidney", "brain-tumor"], missing_rater=False
            )
            for dataset, shape in (("prostate", (16, 16)), ("kidney", (16, 16, 1)), ("brain-tumor", (16, 16, 4))):
                image, raters = synthesize_qubiq_case(dataset, 1, size=16)
                case_dir = os.path.join(tmp, dataset, "Training", "case02")
                written = nib.load(os.path.join(case_dir, "image.nii.gz"))
                self.assertEqual(written.shape, shape)
                np.testing.assert_array_equal(np.asanyarray(written.dataobj).reshape(image.shape), image)
                for task, stack in raters.items():
                    for r, mask in enumerate(stack, start=1):
                        path = os.path.join(case_dir, f"task{task:02d}_seg{r:02d}.nii.gz")
                        rater = nib.load(path)
                        np.testing.assert_array_equal(rater.affine, written.affine)
                        data = np.asanyarray(rater.dataobj)
                        self.assertEqual(data.shape, (16, 16, 1) if dataset == "kidney" else (16, 16))
                        np.testing.assert_array_equal(data.reshape(mask.shape), mask)

    def test_ct_volume_lits_and_kits_geometry(self):
        # LiTS stores (x, y, z) with affine diag(-sx, -sy, sz); KiTS stores (z, y, x) with a permuted affine. Both
        # must put every value at the same physical position.
        rng = np.random.default_rng(3)
        volume = rng.integers(-1000, 1000, (5, 4, 3)).astype(np.int16)
        spacing = (0.5, 0.7, 2.0)
        with tempfile.TemporaryDirectory() as tmp:
            lits, kits = os.path.join(tmp, "lits.nii.gz"), os.path.join(tmp, "kits.nii.gz")
            write_ct_volume(volume, lits, spacing, axial_first=False)
            write_ct_volume(volume, kits, spacing, axial_first=True)
            a, b = nib.load(lits), nib.load(kits)
            a_data, b_data = np.asanyarray(a.dataobj), np.asanyarray(b.dataobj)
        np.testing.assert_array_equal(a_data, volume)
        np.testing.assert_allclose(a.affine, np.diag([-0.5, -0.7, 2.0, 1.0]))
        self.assertEqual(b_data.shape, (3, 4, 5))  # axial first
        np.testing.assert_allclose(np.abs(np.linalg.det(b.affine[:3, :3])), 0.5 * 0.7 * 2.0)  # same voxel volume
        to_kits = np.linalg.inv(b.affine) @ a.affine  # LiTS voxel -> world -> KiTS voxel
        for index in np.ndindex(volume.shape):
            j = to_kits @ np.array([*index, 1.0])
            np.testing.assert_allclose(j, np.round(j), atol=1e-6)
            self.assertEqual(b_data[tuple(np.round(j[:3]).astype(int))], volume[index], index)

    @parameterized.expand(
        [
            [["--layout", "lits"], lits_datalist, "volume-0"],
            [["--layout", "lits", "--msd"], lits_datalist, "liver_0"],
            [["--layout", "kits19"], kits_datalist, "case_00000"],
            [["--layout", "kits21"], kits_datalist, "case_00000"],
        ]
    )
    def test_cli(self, args, reader, first):
        with tempfile.TemporaryDirectory() as tmp:
            self.assertEqual(main([*args, "--out", tmp, "--cases", "5", "--size", "16", "--depth", "8"]), 0)
            data = reader(tmp)
            self.assertEqual([len(data), data[0]["case"]], [5, first])
            self.assertEqual(sorted({e["fold"] for e in data}), [0, 1, 2, 3, 4])
            self.assertEqual("annotations" in data[0], "kits21" in args)


if __name__ == "__main__":
    unittest.main()
