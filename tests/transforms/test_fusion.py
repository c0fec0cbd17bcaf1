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
from fractions import Fraction

import nibabel as nib
import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import Compose, LoadImaged
from parameterized import parameterized

from monai_dml.transforms import (
    LoadRatersd,
    RaterFusion,
    RaterFusiond,
    majority_vote,
    rater_dice_to_majority,
    stack_to_probabilities,
)

# 3 raters on a 1 x 4 row (shape (3, 1, 4)): voxel votes are 3, 2, 0, 1
THREE = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 1]], dtype=torch.float32).reshape(3, 1, 4)
# 7 raters on a 1 x 8 row (shape (7, 1, 8)): rater r marks voxel j iff r < j, so voxel j has j votes
SEVEN = torch.tensor([[1.0 if r < j else 0.0 for j in range(8)] for r in range(7)]).reshape(7, 1, 8)


def _seven_weighted_expected() -> list[float]:
    # majority: voxels 4..7 (4 votes of 7). Rater r marks {r+1..7}: |r| = 7 - r, overlap with the majority
    # 7 - max(r, 3), so Dice_r = 2 (7 - max(r, 3)) / (7 - r + 4): 8/11, 8/10, 8/9, 8/8, 6/7, 4/6, 2/5
    dice = [
        Fraction(8, 11),
        Fraction(8, 10),
        Fraction(8, 9),
        Fraction(1),
        Fraction(6, 7),
        Fraction(4, 6),
        Fraction(2, 5),
    ]
    total = sum(dice)
    return [float(sum(dice[:j]) / total) for j in range(8)]


CASES = [
    # method, raters, expected map (shape (1, 1, n))
    ["majority", THREE, [[[1.0, 1.0, 0.0, 0.0]]]],
    ["uniform", THREE, [[[1.0, 2 / 3, 0.0, 1 / 3]]]],
    # Dice vs majority [1, 1, 0, 0]: 1, 1, 2 * 1 / 4 = 0.5 -> weights 0.4, 0.4, 0.2
    ["weighted", THREE, [[[1.0, 0.8, 0.0, 0.2]]]],
    ["majority", SEVEN, [[[0, 0, 0, 0, 1, 1, 1, 1]]]],
    ["uniform", SEVEN, [[[j / 7 for j in range(8)]]]],
    ["weighted", SEVEN, [[_seven_weighted_expected()]]],
]


class TestRaterFusion(unittest.TestCase):
    @parameterized.expand(CASES)
    def test_hand_built(self, method, raters, expected):
        out = RaterFusion(method)(raters)
        np.testing.assert_allclose(np.asarray(out), np.asarray(expected, dtype=np.float32), rtol=1e-5, atol=1e-6)

    def test_majority_of_six_needs_four(self):
        six = torch.tensor([[1.0 if r < j else 0.0 for j in range(7)] for r in range(6)]).reshape(6, 1, 7)
        np.testing.assert_allclose(np.asarray(RaterFusion("majority")(six)), [[[0, 0, 0, 0, 1, 1, 1]]])

    def test_user_weights(self):
        out = RaterFusion("weighted", weights=[1.0, 0.0, 3.0])(THREE)
        np.testing.assert_allclose(np.asarray(out), [[[1.0, 0.25, 0.0, 0.75]]], rtol=1e-6)

    def test_random_reproducible(self):
        picks = []
        for _ in range(2):
            t = RaterFusion("random")
            t.set_random_state(seed=7)
            picks.append([np.asarray(t(SEVEN)).tolist() for _ in range(5)])
        self.assertEqual(picks[0], picks[1])
        rows = {tuple(np.asarray(r).ravel()) for r in picks[0]}
        self.assertTrue(all(any(np.array_equal(r, s.ravel()) for s in SEVEN.numpy()) for r in map(np.array, rows)))

    def test_uniform_of_identical_raters_is_the_rater(self):
        mask = (torch.rand(1, 6, 5) > 0.5).float()
        for method in ("uniform", "weighted", "majority", "staple"):
            out = RaterFusion(method)(mask.repeat(3, 1, 1))
            np.testing.assert_allclose(np.asarray(out), mask.numpy(), atol=1e-3, err_msg=method)

    def test_weighted_down_weights_outlier(self):
        good = torch.zeros(1, 8, 8)
        good[0, 2:6, 2:6] = 1
        outlier = torch.zeros(1, 8, 8)
        outlier[0, 0:3, 0:8] = 1
        raters = torch.cat([good, good, outlier])
        dice = rater_dice_to_majority(raters)
        self.assertLess(float(dice[2]), float(dice[0]))
        out = RaterFusion("weighted")(raters)
        uniform = RaterFusion("uniform")(raters)
        # where only the outlier marks foreground, the weighted label is below the uniform third
        self.assertLess(float(out[0, 0, 0]), float(uniform[0, 0, 0]))

    def test_staple_between_minority_and_majority(self):
        masks = []
        for half in (1, 2, 3):  # nested squares of half-width 1, 2, 3 around the centre of 10 x 10
            m = torch.zeros(10, 10)
            m[5 - half : 5 + half, 5 - half : 5 + half] = 1
            masks.append(m)
        raters = torch.stack(masks)
        prob = torch.as_tensor(np.asarray(RaterFusion("staple")(raters)))[0]
        self.assertTrue(bool((prob >= masks[0] - 1e-6).all()))  # at least the intersection
        self.assertTrue(bool((prob <= masks[2] + 1e-6).all()))  # at most the union
        self.assertGreater(float(prob[5, 5]), 0.99)
        self.assertLess(float(prob[0, 0]), 0.01)

    def test_multiclass(self):
        # 4 raters, labels 0..2 on 1 x 3 voxels: votes voxel0 {0,0,1,1} tie -> 0; voxel1 {2,2,2,1} -> 2;
        # voxel2 {1,2,1,2} tie -> 1 (lowest index among tied)
        raters = torch.tensor([[0, 2, 1], [0, 2, 2], [1, 2, 1], [1, 1, 2]]).reshape(4, 1, 3)
        maj = np.asarray(RaterFusion("majority", num_classes=3)(raters))
        np.testing.assert_allclose(maj[:, 0], [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
        uni = np.asarray(RaterFusion("uniform", num_classes=3)(raters))
        np.testing.assert_allclose(uni[:, 0], [[0.5, 0, 0], [0.5, 0.25, 0.5], [0, 0.75, 0.5]])
        np.testing.assert_allclose(uni.sum(0), 1.0, rtol=1e-6)
        sta = np.asarray(RaterFusion("staple", num_classes=3)(raters))
        np.testing.assert_allclose(sta.sum(0), 1.0, rtol=1e-5)

    def test_3d_and_rater_dim(self):
        raters = (torch.rand(4, 5, 6, 3, generator=torch.Generator().manual_seed(0)) > 0.5).float()
        out = RaterFusion("uniform")(raters)
        self.assertEqual(tuple(out.shape), (1, 5, 6, 3))
        moved = RaterFusion("uniform", rater_dim=3)(raters.permute(1, 2, 3, 0))
        np.testing.assert_allclose(np.asarray(moved), np.asarray(out))

    def test_types_and_meta(self):
        affine = torch.diag(torch.tensor([2.0, 3.0, 1.0, 1.0]))
        meta_in = MetaTensor(THREE.clone(), affine=affine, meta={"filename_or_obj": "case01"})
        out = RaterFusion("uniform")(meta_in)
        self.assertIsInstance(out, MetaTensor)
        np.testing.assert_allclose(out.affine.numpy(), affine.numpy())
        self.assertEqual(out.meta["filename_or_obj"], "case01")
        self.assertIsInstance(RaterFusion("uniform")(THREE.numpy()), np.ndarray)
        self.assertEqual(RaterFusion("uniform")(THREE.numpy()).dtype, np.float32)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "meen"):
            RaterFusion("meen")
        with self.assertRaisesRegex(ValueError, r"R = 0"):
            RaterFusion()(torch.zeros(0, 4, 4))
        with self.assertRaisesRegex(ValueError, r"binary masks.*0\.5"):
            RaterFusion()(torch.full((3, 4, 4), 0.5))
        with self.assertRaisesRegex(ValueError, "NaN"):
            RaterFusion()(torch.full((3, 4, 4), float("nan")))
        with self.assertRaisesRegex(ValueError, r"img must be an integer label map in \[0, 2\]"):
            RaterFusion(num_classes=3)(torch.full((3, 4, 4), 3.0))
        with self.assertRaisesRegex(ValueError, "weights must be finite"):
            RaterFusion("weighted", weights=[1.0, -1.0])
        with self.assertRaisesRegex(ValueError, "weights must be finite"):
            RaterFusion("weighted", weights=[1.0, float("nan")])
        with self.assertRaisesRegex(ValueError, "weights has 2 values but the case has 3 raters"):
            RaterFusion("weighted", weights=[1.0, 1.0])(THREE)
        with self.assertRaisesRegex(ValueError, "method='weighted' only"):
            RaterFusion("uniform", weights=[1.0, 1.0])
        with self.assertRaisesRegex(ValueError, "num_classes"):
            RaterFusion(num_classes=1)
        with self.assertRaisesRegex(ValueError, r"\(R, H, W\)"):
            RaterFusion()(torch.zeros(3, 4))


class TestHelpers(unittest.TestCase):
    def test_majority_vote_and_probabilities(self):
        onehot = stack_to_probabilities(torch.tensor([[0, 1], [1, 1], [2, 1]]).reshape(3, 1, 2), num_classes=3)
        self.assertEqual(tuple(onehot.shape), (3, 3, 1, 2))
        np.testing.assert_allclose(majority_vote(onehot)[:, 0].numpy(), [[1, 0], [0, 1], [0, 0]])

    def test_rater_dice_multiclass(self):
        raters = torch.tensor([[0, 1, 2, 2], [0, 1, 2, 2], [0, 2, 2, 2]]).reshape(3, 1, 4)
        # majority [0, 1, 2, 2]; rater 3: class 1 Dice 0 (0 vs 1 voxel), class 2 Dice 2*2/(3+2) = 0.8 -> mean 0.4
        np.testing.assert_allclose(rater_dice_to_majority(raters, num_classes=3).numpy(), [1.0, 1.0, 0.4], rtol=1e-6)


class TestRaterFusiond(unittest.TestCase):
    def test_matches_array(self):
        for method in ("majority", "uniform", "weighted", "staple"):
            out = RaterFusiond("raters", output_key="label", method=method)({"raters": SEVEN})
            np.testing.assert_allclose(np.asarray(out["label"]), np.asarray(RaterFusion(method)(SEVEN)), atol=1e-6)
            self.assertIn("raters", out)

    def test_several_keys(self):
        data = {f"r{i}": THREE[i] for i in range(3)}
        out = RaterFusiond(["r0", "r1", "r2"], output_key="label", method="uniform")(data)
        np.testing.assert_allclose(np.asarray(out["label"]), [[[1.0, 2 / 3, 0.0, 1 / 3]]], rtol=1e-6)
        with self.assertRaisesRegex(ValueError, "output_key is required"):
            RaterFusiond(["r0", "r1"])
        with self.assertRaisesRegex(ValueError, "rater_dim applies to a single stacked key"):
            RaterFusiond(["r0", "r1"], output_key="label", rater_dim=1)
        with self.assertRaisesRegex(ValueError, "different shapes"):
            RaterFusiond(["r0", "r1"], output_key="label")({"r0": THREE[0], "r1": torch.zeros(1, 5)})

    def test_random_state_and_staple_stats(self):
        a = RaterFusiond("raters", method="random").set_random_state(3)
        b = RaterFusiond("raters", method="random").set_random_state(3)
        for _ in range(4):
            np.testing.assert_array_equal(
                np.asarray(a({"raters": SEVEN})["raters"]), np.asarray(b({"raters": SEVEN})["raters"])
            )
        out = RaterFusiond("raters", output_key="label", method="staple", save_staple_stats=True)({"raters": SEVEN})
        self.assertEqual(tuple(out["label_sensitivity"].shape), (7,))
        self.assertEqual(tuple(out["label_specificity"].shape), (7,))

    def test_config(self):
        t = ConfigParser(
            {"t": {"_target_": "monai_dml.transforms.RaterFusiond", "keys": "raters", "method": "weighted"}}
        ).get_parsed_content("t")
        self.assertIsInstance(t, RaterFusiond)


class TestPipeline(unittest.TestCase):
    def test_load_and_fuse_nifti(self):
        with tempfile.TemporaryDirectory() as tmp:
            affine = np.diag([0.5, 0.5, 1.0, 1.0])
            image = np.random.default_rng(0).random((8, 8)).astype(np.float32)
            nib.save(nib.Nifti1Image(image, affine), os.path.join(tmp, "image.nii.gz"))
            files = []
            for r in range(3):
                mask = np.zeros((8, 8), dtype=np.uint8)
                mask[2 : 5 + r, 2:6] = 1  # raters disagree on the lower edge
                files.append(os.path.join(tmp, f"task01_seg0{r + 1}.nii.gz"))
                nib.save(nib.Nifti1Image(mask, affine), files[-1])
            pipeline = Compose(
                [
                    LoadImaged("image", ensure_channel_first=True),
                    LoadRatersd("raters"),
                    RaterFusiond("raters", output_key="label", method="uniform"),
                ]
            )
            out = pipeline({"image": os.path.join(tmp, "image.nii.gz"), "raters": files})
            label = out["label"]
            self.assertEqual(tuple(label.shape), (1, 8, 8))
            np.testing.assert_allclose(label[0, 2:5, 2].numpy(), 1.0)
            np.testing.assert_allclose(label[0, 5:7, 2].numpy(), [2 / 3, 1 / 3], rtol=1e-6)
            np.testing.assert_allclose(label.affine.numpy(), affine)
            self.assertEqual(out["raters"].meta["rater_files"], files)


if __name__ == "__main__":
    unittest.main()
