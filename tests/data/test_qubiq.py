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
"""The QUBIQ reader against the layout of the challenge data, written file by file in the tests.

The expected facts are written here from the QUBIQ 2020 description in Wang et al. (2023), Sect. 3.1 and Table 1
(prostate 2 tasks and 6 raters, brain-growth 1 task and 7 raters, brain-tumor 3 tasks and 3 raters, kidney 1 task and
3 raters) and the folder layout in docs/data.md, never read from the package's tables."""

from __future__ import annotations

import os
import shutil
import tempfile
import unittest

import nibabel as nib
import numpy as np
from parameterized import parameterized

from monai_dml.data import (
    QUBIQ_RATERS,
    QUBIQ_TABLE1,
    check_qubiq_files,
    ct_3d_transforms,
    generate_qubiq,
    qubiq_2d_transforms,
    qubiq_datalist,
    qubiq_rater_agreement,
)
from monai_dml.data.synthetic import main

# Wang et al. (2023), Sect. 3.1: QUBIQ 2020 dataset folder -> (tasks, raters)
QUBIQ_2020 = {"prostate": (2, 6), "brain-growth": (1, 7), "brain-tumor": (3, 3), "kidney": (1, 3)}
# Wang et al. (2023), Table 1: sub-data set -> (folder, task, raters, mean Dice of each rater against the majority, %)
PAPER_TABLE1 = {
    "D1": ("prostate", 1, 6, 96.49),
    "D2": ("prostate", 2, 6, 92.17),
    "D3": ("brain-growth", 1, 7, 91.20),
    "D4": ("brain-tumor", 1, 3, 95.44),
    "D5": ("brain-tumor", 2, 3, 68.73),
    "D6": ("brain-tumor", 3, 3, 92.71),
    "D7": ("kidney", 1, 3, 97.41),
}
AFFINE = np.diag([0.5, 0.5, 1.0, 1.0])


def _rows(first: int, last: int, size: int = 8) -> np.ndarray:
    """A binary ``(size, size)`` mask whose rows ``first..last`` are foreground."""
    mask = np.zeros((size, size), np.uint8)
    mask[first : last + 1] = 1
    return mask


def _image(dataset: str, index: int, size: int = 8) -> np.ndarray:
    """QUBIQ's stored image shapes: brain-tumor ``(H, W, 4)`` (four MR modalities last), kidney ``(H, W, 1)``,
    the others ``(H, W)``; channel ``c`` ramps along rows with range ``10 * (c + 1)``, offset by the case index."""
    ramp = np.arange(size * size, dtype=np.float32).reshape(size, size) / (size * size - 1)
    channels = [index + 10.0 * (c + 1) * (ramp if c % 2 == 0 else ramp.T) for c in range(4)]
    if dataset == "brain-tumor":
        return np.stack(channels, axis=-1)
    return channels[0][..., None] if dataset == "kidney" else channels[0]


def _rater_mask(task: int, rater: int, size: int = 8) -> np.ndarray:
    """A different mask for every task and rater: rows ``task - 1 .. task + rater - 1``."""
    return _rows(task - 1, task + rater - 1, size)


def _write_case(root: str, dataset: str, case: int, masks: dict[int, dict[int, np.ndarray]] | None = None) -> str:
    """Write ``<root>/<dataset>/Training/caseNN/image.nii.gz`` and ``taskTT_segRR.nii.gz``; ``masks`` maps task ->
    rater -> mask (default: every task and rater of the dataset, ``_rater_mask``). Returns the case folder."""
    case_dir = os.path.join(root, dataset, "Training", f"case{case:02d}")
    os.makedirs(case_dir, exist_ok=True)
    image = _image(dataset, case)
    nib.save(nib.Nifti1Image(image, AFFINE), os.path.join(case_dir, "image.nii.gz"))
    if masks is None:
        tasks, raters = QUBIQ_2020[dataset]
        masks = {t: {r: _rater_mask(t, r) for r in range(1, raters + 1)} for t in range(1, tasks + 1)}
    for task, by_rater in masks.items():
        for rater, mask in by_rater.items():
            stored = mask[..., None] if dataset == "kidney" else mask  # kidney keeps the (H, W, 1) of its image
            nib.save(nib.Nifti1Image(stored, AFFINE), os.path.join(case_dir, f"task{task:02d}_seg{rater:02d}.nii.gz"))
    return case_dir


def _write_layout(root: str) -> None:
    """6 prostate cases (case03 has only 5 raters in task 1, like the one such case of the real set), 5 brain-growth,
    5 brain-tumor and 7 kidney cases."""
    for dataset, cases in (("prostate", 6), ("brain-growth", 5), ("brain-tumor", 5), ("kidney", 7)):
        for case in range(1, cases + 1):
            _write_case(root, dataset, case)
    case_dir = os.path.join(root, "prostate", "Training", "case03")
    os.remove(os.path.join(case_dir, "task01_seg06.nii.gz"))


def _expected_entries(root: str, layout: tuple[tuple[str, int], ...], skipped: set[tuple[str, int, int]]) -> list:
    """The entries the layout describes, in the reader's order: by dataset folder name, case number and task."""
    entries = []
    for dataset, cases in sorted(layout):
        tasks, raters = QUBIQ_2020[dataset]
        for case in range(1, cases + 1):
            case_dir = os.path.join(root, dataset, "Training", f"case{case:02d}")
            for task in range(1, tasks + 1):
                if (dataset, case, task) in skipped:
                    continue
                entries.append(
                    {
                        "image": os.path.join(case_dir, "image.nii.gz"),
                        "raters": [
                            os.path.join(case_dir, f"task{task:02d}_seg{r:02d}.nii.gz") for r in range(1, raters + 1)
                        ],
                        "case": f"{dataset}/case{case:02d}",
                        "dataset": dataset,
                        "task": task,
                    }
                )
    return entries


class TestQubiqLayout(unittest.TestCase):
    LAYOUT = (("prostate", 6), ("brain-growth", 5), ("brain-tumor", 5), ("kidney", 7))

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = cls.tmp.name
        _write_layout(cls.root)
        with cls.assertWarnsRegex(cls, UserWarning, r"prostate/case03 task 1: 5 of 6 raters, missing seg \[6\]"):
            cls.data = qubiq_datalist(cls.root)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_entries(self):
        expected = _expected_entries(self.root, self.LAYOUT, skipped={("prostate", 3, 1)})
        self.assertEqual(
            {frozenset(e) for e in self.data}, {frozenset(["image", "raters", "case", "dataset", "task", "fold"])}
        )
        self.assertEqual([{k: v for k, v in e.items() if k != "fold"} for e in self.data], expected)
        counts = {}
        for e in self.data:
            key = (e["dataset"], e["task"], len(e["raters"]))
            counts[key] = counts.get(key, 0) + 1
        expected_counts = {("prostate", 1, 6): 5, ("prostate", 2, 6): 6, ("brain-growth", 1, 7): 5, ("kidney", 1, 3): 7}
        expected_counts.update({("brain-tumor", t, 3): 5 for t in (1, 2, 3)})
        self.assertEqual(counts, expected_counts)

    def test_folds(self):
        # contiguous (the paper's code): n // 5 consecutive cases per fold, the remainder in the last fold
        expected = {
            "prostate": [0, 1, 2, 3, 4, 4],  # case03 stays through its complete task 2
            "brain-growth": [0, 1, 2, 3, 4],
            "brain-tumor": [0, 1, 2, 3, 4],
            "kidney": [0, 1, 2, 3, 4, 4, 4],
        }
        for dataset, folds in expected.items():
            for case, fold in enumerate(folds, start=1):
                got = {e["fold"] for e in self.data if e["case"] == f"{dataset}/case{case:02d}"}
                self.assertEqual(got, {fold}, f"{dataset}/case{case:02d}")  # every task of a case: one fold
        with self.assertWarns(UserWarning):
            again = qubiq_datalist(self.root)
        self.assertEqual([e["fold"] for e in again], [e["fold"] for e in self.data])  # stable
        kidney = qubiq_datalist(self.root, datasets=["kidney"], num_folds=2)
        self.assertEqual([e["fold"] for e in kidney], [0, 0, 0, 1, 1, 1, 1])

    def test_missing_rater_policies(self):
        with self.assertWarnsRegex(UserWarning, "kept with what they have"):
            kept = qubiq_datalist(self.root, datasets=["prostate"], tasks=[1], missing_raters="keep")
        self.assertEqual([e["case"] for e in kept], [f"prostate/case{c:02d}" for c in range(1, 7)])
        case_dir = os.path.join(self.root, "prostate", "Training", "case03")
        self.assertEqual(kept[2]["raters"], [os.path.join(case_dir, f"task01_seg{r:02d}.nii.gz") for r in range(1, 6)])
        self.assertEqual([e["fold"] for e in kept], [0, 1, 2, 3, 4, 4])
        with self.assertRaisesRegex(ValueError, "prostate/case03 task 1.*missing_raters='skip'"):
            qubiq_datalist(self.root, datasets=["prostate"], missing_raters="error")

    def test_file_checks_accept_every_layout_quirk(self):
        """``(H, W)``, ``(H, W, 1)`` and ``(H, W, 4)`` images with 0/1 masks pass; a wrong channel count does not."""
        for dataset, channels in (("prostate", 1), ("brain-growth", 1), ("brain-tumor", 4), ("kidney", 1)):
            check_qubiq_files([e for e in self.data if e["dataset"] == dataset], in_channels=channels)
        with self.assertRaisesRegex(ValueError, r"brain-tumor.Training.case01.image.nii.gz has shape \(8, 8, 4\)"):
            check_qubiq_files([e for e in self.data if e["dataset"] == "brain-tumor"], in_channels=1)
        with self.assertRaisesRegex(ValueError, r"kidney.Training.case01.image.nii.gz has shape \(8, 8, 1\)"):
            check_qubiq_files([e for e in self.data if e["dataset"] == "kidney"], in_channels=4)

    def test_task_and_dataset_filters(self):
        second = qubiq_datalist(self.root, tasks=[2])  # only prostate and brain-tumor have a task 2
        self.assertEqual([(e["dataset"], e["task"]) for e in second], [("brain-tumor", 2)] * 5 + [("prostate", 2)] * 6)
        kidney = qubiq_datalist(self.root, datasets=["kidney"])
        self.assertEqual(kidney, [e for e in self.data if e["dataset"] == "kidney"])


class TestQubiqLayoutVariants(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_without_split_level_and_validation_split(self):
        for case in range(1, 6):
            _write_case(self.root, "kidney", case)
        for case in range(1, 6):  # <dataset>/Validation/caseNN, read with split="Validation"
            _write_case(self.root, "brain-growth", case)
        os.rename(
            os.path.join(self.root, "brain-growth", "Training"), os.path.join(self.root, "brain-growth", "Validation")
        )
        flat = os.path.join(self.root, "kidney")  # <dataset>/caseNN without the split level
        for case in range(1, 6):
            os.rename(os.path.join(flat, "Training", f"case{case:02d}"), os.path.join(flat, f"case{case:02d}"))
        os.rmdir(os.path.join(flat, "Training"))
        data = qubiq_datalist(self.root, datasets=["kidney"])
        self.assertEqual(
            [e["image"] for e in data], [os.path.join(flat, f"case{c:02d}", "image.nii.gz") for c in range(1, 6)]
        )
        self.assertEqual([len(e["raters"]) for e in data], [3] * 5)
        validation = qubiq_datalist(self.root, datasets=["brain-growth"], split="Validation")
        self.assertEqual([e["case"] for e in validation], [f"brain-growth/case{c:02d}" for c in range(1, 6)])
        self.assertEqual([len(e["raters"]) for e in validation], [7] * 5)

    def test_unknown_dataset_expects_the_most_raters_found(self):
        for case in range(1, 7):  # a QUBIQ 2021 folder: its rater count is not in the 2020 description
            raters = {1: _rows(0, 3), 2: _rows(0, 4)} if case != 4 else {1: _rows(0, 3)}
            _write_case(self.root, "pancreas", case, masks={1: raters})
        with self.assertWarnsRegex(UserWarning, r"pancreas/case04 task 1: 1 of 2 raters, missing seg \[2\]"):
            data = qubiq_datalist(self.root)
        self.assertEqual([e["case"] for e in data], [f"pancreas/case{c:02d}" for c in (1, 2, 3, 5, 6)])


class TestQubiqPreprocessing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        for dataset in QUBIQ_2020:
            for case in range(1, 6):
                _write_case(cls.tmp.name, dataset, case)
        cls.data = qubiq_datalist(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @parameterized.expand(
        [["brain-tumor", 2, 4, 3], ["kidney", 1, 1, 3], ["prostate", 2, 1, 6], ["brain-growth", 1, 1, 7]]
    )
    def test_channels_scaling_and_raters(self, dataset, task, channels, raters):
        entry = next(e for e in self.data if e["dataset"] == dataset and e["task"] == task and e["case"].endswith("3"))
        masks = np.stack([_rater_mask(task, r) for r in range(1, raters + 1)]).astype(np.float32)
        ramp = np.arange(64, dtype=np.float32).reshape(8, 8) / 63
        # at the stored size: every channel min-max scaled on its own, in the stored modality order; raters in order
        out = qubiq_2d_transforms(size=8, fusion="uniform")(entry)
        self.assertEqual(tuple(out["image"].shape), (channels, 8, 8))
        for c in range(channels):
            np.testing.assert_allclose(np.asarray(out["image"][c]), ramp if c % 2 == 0 else ramp.T, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(out["raters"]), masks)
        np.testing.assert_allclose(np.asarray(out["label"]), masks.mean(axis=0, keepdims=True), rtol=1e-6)
        # resized x2: nearest for the raters (every voxel a 2 x 2 block), bilinear for the image
        out = qubiq_2d_transforms(size=16, fusion="uniform")(entry)
        self.assertEqual(tuple(out["image"].shape), (channels, 16, 16))
        upsampled = np.stack([np.kron(m, np.ones((2, 2), np.float32)) for m in masks])
        np.testing.assert_array_equal(np.asarray(out["raters"]), upsampled)
        np.testing.assert_allclose(np.asarray(out["label"]), upsampled.mean(axis=0, keepdims=True), rtol=1e-6)
        image = np.asarray(out["image"])
        np.testing.assert_allclose(image.min(axis=(1, 2)), np.zeros(channels), atol=1e-6)
        np.testing.assert_allclose(image.max(axis=(1, 2)), np.ones(channels), atol=1e-6)


class TestQubiqAgreement(unittest.TestCase):
    def test_tables_are_the_papers(self):
        self.assertEqual(QUBIQ_TABLE1, PAPER_TABLE1)
        self.assertEqual(QUBIQ_RATERS, {dataset: raters for dataset, (_, raters) in QUBIQ_2020.items()})
        for dataset, (tasks, raters) in QUBIQ_2020.items():  # the table's tasks are those of Sect. 3.1
            rows = [row for row in PAPER_TABLE1.values() if row[0] == dataset]
            self.assertEqual([(row[1], row[2]) for row in rows], [(t, raters) for t in range(1, tasks + 1)])

    def test_rater_agreement_by_hand(self):
        with tempfile.TemporaryDirectory() as tmp:
            # kidney case01: raters rows 0-3, 0-3, 0-1; majority (2 of 3) rows 0-3: Dice 1, 1, 2 * 16 / (16 + 32)
            _write_case(tmp, "kidney", 1, masks={1: {1: _rows(0, 3), 2: _rows(0, 3), 3: _rows(0, 1)}})
            # prostate case01 task 1: raters 1-4 rows 0-3, raters 5-6 rows 0-5; majority (4 of 6) rows 0-3:
            # Dice 1 (x4) and 2 * 32 / (48 + 32) = 0.8 (x2); task 2: six equal raters
            task1 = {r: _rows(0, 3) if r <= 4 else _rows(0, 5) for r in range(1, 7)}
            _write_case(tmp, "prostate", 1, masks={1: task1, 2: {r: _rows(2, 6) for r in range(1, 7)}})
            for case in range(2, 6):  # unanimous cases: every rater is the majority
                _write_case(tmp, "kidney", case, masks={1: {r: _rows(1, 4) for r in range(1, 4)}})
                _write_case(tmp, "prostate", case, masks={t: {r: _rows(0, t) for r in range(1, 7)} for t in (1, 2)})
            measured = qubiq_rater_agreement(qubiq_datalist(tmp))
        expected = {
            "kidney/task01": ((1 + 1 + 2 / 3) / 3 + 4) / 5,
            "prostate/task01": ((4 + 2 * 0.8) / 6 + 4) / 5,
            "prostate/task02": 1.0,
        }
        self.assertEqual(set(measured), set(expected))
        for key, value in expected.items():
            self.assertAlmostEqual(measured[key], value, places=6, msg=key)

    def test_generator_matches_table1(self):
        # the generator's raters against the majority vote, read back from the files, within 2 points of Table 1
        with tempfile.TemporaryDirectory() as tmp:
            data = qubiq_datalist(generate_qubiq(tmp, num_cases=20, size=64, missing_rater=False))
            measured = qubiq_rater_agreement(data)
        self.assertEqual(set(measured), {f"{d}/task{t:02d}" for d, t, _, _ in PAPER_TABLE1.values()})
        for key, (dataset, task, num_raters, dice) in PAPER_TABLE1.items():
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
