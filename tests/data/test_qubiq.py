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
import shutil
import tempfile
import unittest
from collections import Counter

import nibabel as nib
import numpy as np
import torch
from parameterized import parameterized

from monai_dml.data import (
    QUBIQ_TABLE1,
    ct_3d_transforms,
    generate_qubiq,
    qubiq_2d_transforms,
    qubiq_datalist,
    qubiq_rater_agreement,
)
from monai_dml.data.synthetic import main


class TestQubiqLayout(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = generate_qubiq(cls.tmp.name, num_cases=10, size=32)
        with cls.assertWarnsRegex(cls, UserWarning, r"prostate/case09 task 1: 5 of 6 raters, missing seg \[6\]"):
            cls.data = qubiq_datalist(cls.root)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_entries(self):
        counts = Counter((e["dataset"], e["task"], len(e["raters"])) for e in self.data)
        expected = {("prostate", 1, 6): 9, ("prostate", 2, 6): 9, ("brain-growth", 1, 7): 10, ("kidney", 1, 3): 10}
        expected.update({("brain-tumor", t, 3): 10 for t in (1, 2, 3)})
        self.assertEqual(dict(counts), expected)
        first = self.data[0]
        self.assertEqual(set(first), {"image", "raters", "case", "dataset", "task", "fold"})
        self.assertTrue(first["raters"][0].endswith("task01_seg01.nii.gz"))

    def test_folds(self):
        for dataset in ("prostate", "brain-growth", "brain-tumor", "kidney"):
            cases = {e["case"]: e["fold"] for e in self.data if e["dataset"] == dataset}
            per_case = {(e["case"], e["fold"]) for e in self.data if e["dataset"] == dataset}
            self.assertEqual(len(per_case), len(cases))  # all tasks of a case share its fold
            self.assertEqual(set(cases.values()), set(range(5)))  # every fold validates some cases
        with self.assertWarns(UserWarning):
            again = qubiq_datalist(self.root)
        self.assertEqual([e["fold"] for e in again], [e["fold"] for e in self.data])  # stable

    def test_missing_rater_policies(self):
        with self.assertWarnsRegex(UserWarning, "kept with what they have"):
            kept = qubiq_datalist(self.root, datasets=["prostate"], tasks=[1], missing_raters="keep")
        self.assertEqual(sorted(len(e["raters"]) for e in kept)[0], 5)
        with self.assertRaisesRegex(ValueError, "prostate/case09 task 1.*missing_raters='skip'"):
            qubiq_datalist(self.root, datasets=["prostate"], missing_raters="error")

    @parameterized.expand([["brain-tumor", 2, 4, 3], ["kidney", 1, 1, 3], ["prostate", 2, 1, 6]])
    def test_preprocessing(self, dataset, task, channels, raters):
        entry = next(e for e in self.data if e["dataset"] == dataset and e["task"] == task)
        out = qubiq_2d_transforms(size=48, fusion="uniform")(entry)
        self.assertEqual(tuple(out["image"].shape), (channels, 48, 48))
        self.assertEqual(tuple(out["raters"].shape), (raters, 48, 48))
        self.assertEqual(tuple(out["label"].shape), (1, 48, 48))
        self.assertTrue(set(torch.unique(out["raters"]).tolist()) <= {0.0, 1.0})
        self.assertGreaterEqual(float(out["image"].min()), 0.0)  # every channel scaled to [0, 1] before resizing
        self.assertLessEqual(float(out["image"].max()), 1.0)
        self.assertGreaterEqual(float(out["label"].min()), 0.0)
        self.assertLessEqual(float(out["label"].max()), 1.0)


class TestQubiqAgreement(unittest.TestCase):
    def test_table1(self):
        # the generator's raters against the majority vote, read back from the files, within 2 points of Table 1
        with tempfile.TemporaryDirectory() as tmp:
            data = qubiq_datalist(generate_qubiq(tmp, num_cases=20, size=64, missing_rater=False))
            measured = qubiq_rater_agreement(data)
        for key, (dataset, task, num_raters, dice) in QUBIQ_TABLE1.items():
            got = 100 * measured[f"{dataset}/task{task:02d}"]
            self.assertLessEqual(abs(got - dice), 2.0, f"{key} ({dataset} task {task}): {got:.2f} vs {dice}")
            self.assertEqual({len(e["raters"]) for e in data if e["dataset"] == dataset}, {num_raters})


class TestQubiqErrors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        generate_qubiq(self.root, num_cases=6, size=16, datasets=["kidney"])
        self.case = os.path.join(self.root, "kidney", "Training", "case02")

    def tearDown(self):
        self.tmp.cleanup()

    def test_missing_and_empty_dir(self):
        with self.assertRaisesRegex(FileNotFoundError, "does_not_exist"):
            qubiq_datalist(os.path.join(self.root, "does_not_exist"))
        with tempfile.TemporaryDirectory() as empty, self.assertRaisesRegex(ValueError, "holds no QUBIQ case"):
            qubiq_datalist(empty)
        with self.assertRaisesRegex(FileNotFoundError, "prostate"):
            qubiq_datalist(self.root, datasets=["prostate"])

    def test_image_without_labels(self):
        for f in os.listdir(self.case):
            if f.startswith("task"):
                os.remove(os.path.join(self.case, f))
        with self.assertRaisesRegex(ValueError, "kidney/case02: no taskTT_segRR rater file beside .*case02"):
            qubiq_datalist(self.root)
        with self.assertWarnsRegex(UserWarning, "kidney/case02"):
            data = qubiq_datalist(self.root, incomplete="skip")
        self.assertEqual(len(data), 5)

    def test_shape_mismatch(self):
        path = os.path.join(self.case, "task01_seg02.nii.gz")
        nib.save(nib.Nifti1Image(np.zeros((16, 12), np.uint8), np.eye(4)), path)
        with self.assertRaisesRegex(ValueError, r"task01_seg02.nii.gz has shape \(16, 12\) but its image .*case02"):
            qubiq_datalist(self.root)

    def test_corrupt_file(self):
        path = os.path.join(self.case, "image.nii.gz")
        with open(path, "wb") as f:
            f.write(b"not a nifti file")
        with self.assertRaisesRegex(ValueError, "could not read the NIfTI header of .*case02.image.nii.gz"):
            qubiq_datalist(self.root)


class TestQubiq2021AndCli(unittest.TestCase):
    def test_pancreas_3d(self):
        with tempfile.TemporaryDirectory() as tmp:
            data = qubiq_datalist(generate_qubiq(tmp, 5, size=24, depth=12, datasets=["pancreas"]))
            self.assertEqual(len(data), 5)
            out = ct_3d_transforms(hu_window=(0, 1000), label_key=None, rater_key="raters")(data[0])
            self.assertEqual(tuple(out["image"].shape), (1, 24, 24, 12))
            self.assertEqual(tuple(out["raters"].shape), (2, 24, 24, 12))

    def test_cli(self):
        tmp = tempfile.mkdtemp()
        try:
            self.assertEqual(main(["--layout", "qubiq", "--out", tmp, "--cases", "6", "--size", "24"]), 0)
            with self.assertWarns(UserWarning):  # prostate case06 lacks a rater
                data = qubiq_datalist(tmp)
            self.assertEqual(len({e["case"] for e in data}), 4 * 6 - 1)
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    unittest.main()
