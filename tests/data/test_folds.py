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

from parameterized import parameterized

from monai_dml.data import assign_folds, natural_key, split_folds

# [num_cases, num_folds, method, expected fold sizes]
TEST_CASES = [
    [24, 5, "contiguous", [4, 4, 4, 4, 8]],  # QUBIQ kidney: the reference code puts the remainder in the last fold
    [55, 5, "contiguous", [11] * 5],  # QUBIQ prostate
    [39, 5, "contiguous", [7, 7, 7, 7, 11]],  # QUBIQ brain-growth
    [24, 5, "balanced", [5, 5, 5, 5, 4]],
    [10, 5, "balanced", [2] * 5],
]


class TestFolds(unittest.TestCase):
    @parameterized.expand(TEST_CASES)
    def test_sizes_disjoint_covering(self, n, k, method, sizes):
        ids = [f"case{i:02d}" for i in range(1, n + 1)]
        folds = assign_folds(ids, k, method)
        self.assertEqual(set(folds), set(ids))  # covering: every case has exactly one fold
        self.assertEqual([list(folds.values()).count(f) for f in range(k)], sizes)
        self.assertEqual(folds, assign_folds(list(reversed(ids)), k, method))  # stable: input order does not matter

    def test_natural_order(self):
        self.assertEqual(sorted(["case10", "case9", "case1"], key=natural_key), ["case1", "case9", "case10"])
        folds = assign_folds([f"volume-{i}" for i in range(10)], 5)
        self.assertEqual(folds["volume-9"], 4)
        self.assertEqual(folds["volume-0"], 0)

    def test_hash_is_stable_when_cases_are_added(self):
        ids = [f"case_{i:05d}" for i in range(40)]
        before = assign_folds(ids, 5, "hash", seed=3)
        after = assign_folds([*ids, "case_00040", "case_00041"], 5, "hash", seed=3)
        self.assertTrue(all(after[c] == f for c, f in before.items()))
        self.assertNotEqual(before, assign_folds(ids, 5, "hash", seed=4))
        with self.assertWarnsRegex(UserWarning, "without cases"):
            assign_folds(["a"], 5, "hash")

    def test_split(self):
        data = [{"case": f"c{i}", "fold": f} for i, f in enumerate([0, 1, 1, 2])]
        train, val = split_folds(data, 1)
        self.assertEqual([e["case"] for e in val], ["c1", "c2"])
        self.assertEqual([e["case"] for e in train], ["c0", "c3"])

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "num_folds must be at least 2, got 1"):
            assign_folds(["a", "b"], 1)
        with self.assertRaisesRegex(ValueError, "at least num_folds=5 cases"):
            assign_folds(["a", "b"], 5)
        with self.assertRaisesRegex(ValueError, "contiguous"):
            assign_folds(["a", "b"], 2, "contigous")
        with self.assertRaisesRegex(ValueError, "no datalist entry is in fold=3"):
            split_folds([{"fold": 0}], 3)
        with self.assertRaisesRegex(ValueError, "has no 'fold' key"):
            split_folds([{"case": "x"}], 0)


if __name__ == "__main__":
    unittest.main()
