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
"""MONAI's CacheDataset caches the deterministic fusions and reruns only the random rater every epoch."""

from __future__ import annotations

import unittest
from unittest import mock

import numpy as np
import torch
from monai.data import CacheDataset
from monai.transforms import Compose, RandomizableTrait
from parameterized import parameterized

from monai_dml.transforms import RandRaterFusion, RandRaterFusiond, RaterFusion, RaterFusiond
from monai_dml.transforms.fusion import array as fusion_array, staple as fusion_staple

N_ITEMS = 3
EPOCHS = 2


def _items() -> list[dict[str, torch.Tensor]]:
    """Five different raters per item (rater r marks the first r + 2 of 8 pixels)."""
    stack = torch.zeros(5, 1, 8)
    for r in range(5):
        stack[r, 0, : r + 2] = 1.0
    return [{"raters": stack.clone(), "id": torch.tensor(i)} for i in range(N_ITEMS)]


def _epochs(ds: CacheDataset) -> list[list[list[float]]]:
    """The ``label`` of every item in every epoch, as lists."""
    return [[ds[i]["label"].ravel().tolist() for i in range(len(ds))] for _ in range(EPOCHS)]


class TestCacheDataset(unittest.TestCase):
    @parameterized.expand([("majority",), ("uniform",), ("weighted",), ("staple",)])
    def test_deterministic_fusion_runs_once_per_item(self, method):
        fusion = RaterFusiond("raters", output_key="label", method=method)
        self.assertNotIsInstance(fusion, RandomizableTrait)
        counter = mock.patch.object(fusion_array, "stack_to_probabilities", wraps=fusion_array.stack_to_probabilities)
        with counter as probe:
            ds = CacheDataset(_items(), transform=Compose([fusion]), cache_rate=1.0, num_workers=0, progress=False)
            labels = _epochs(ds)
        self.assertEqual(probe.call_count, N_ITEMS)  # at caching only, none in the two epochs
        self.assertEqual(labels[0], labels[1])
        for i in range(N_ITEMS):  # the cached item already holds the fused target
            self.assertIn("label", ds._cache[i])

    def test_staple_runs_once_per_item_with_a_random_transform_after_it(self):
        chain = Compose(
            [
                RaterFusiond("raters", output_key="label", method="staple", save_staple_stats=True),
                RandRaterFusiond("raters", output_key="drawn"),
            ]
        ).set_random_state(0)
        with mock.patch.object(fusion_staple, "staple_binary", wraps=fusion_staple.staple_binary) as probe:
            ds = CacheDataset(_items(), transform=chain, cache_rate=1.0, num_workers=2, progress=False)
            for _ in range(EPOCHS):
                for i in range(N_ITEMS):
                    self.assertEqual(tuple(ds[i]["label_sensitivity"].shape), (5,))
        self.assertEqual(probe.call_count, N_ITEMS)
        self.assertNotIn("drawn", ds._cache[0])

    def test_random_rater_redrawn_every_epoch(self):
        def run(seed: int) -> tuple[list[list[list[float]]], int]:
            fusion = RaterFusiond("raters", output_key="label", method="random")
            self.assertIsInstance(fusion, RandRaterFusiond)
            self.assertIsInstance(fusion.fusion, RandRaterFusion)
            chain = Compose([fusion]).set_random_state(seed)
            counter = mock.patch.object(
                fusion_array, "stack_to_probabilities", wraps=fusion_array.stack_to_probabilities
            )
            with counter as probe:
                ds = CacheDataset(_items(), transform=chain, cache_rate=1.0, num_workers=0, progress=False)
                return [lab for _ in range(3) for lab in _epochs(ds)], probe.call_count

        labels, calls = run(seed=5)
        self.assertEqual(calls, N_ITEMS * EPOCHS * 3)  # nothing cached: one draw per item and epoch
        self.assertGreater(len({tuple(map(tuple, epoch)) for epoch in labels}), 1)
        raters = {tuple(r.ravel().tolist()) for r in _items()[0]["raters"]}
        self.assertTrue(all(tuple(lab) in raters for epoch in labels for lab in epoch))
        self.assertEqual(run(seed=5)[0], labels)


class TestDispatch(unittest.TestCase):
    def test_random_method_gives_the_rand_class(self):
        self.assertIs(type(RaterFusion("random", num_classes=3)), RandRaterFusion)
        self.assertIs(type(RaterFusion(method="uniform")), RaterFusion)
        self.assertIs(type(RaterFusiond("r", "label", "random")), RandRaterFusiond)
        self.assertIs(type(RaterFusiond(keys="r", method="staple")), RaterFusiond)
        self.assertIsInstance(RandRaterFusiond("r"), RaterFusiond)
        self.assertFalse(hasattr(RaterFusion("majority"), "set_random_state"))

    def test_rand_class_rejects_other_methods(self):
        with self.assertRaisesRegex(ValueError, "RandRaterFusion cannot fuse with method='uniform'"):
            RandRaterFusion("uniform")
        with self.assertRaisesRegex(ValueError, "RandRaterFusion cannot fuse with method='majority'"):
            RandRaterFusiond("r", method="majority")
        self.assertEqual(RandRaterFusion(num_classes=3).method, "random")
        self.assertEqual(RandRaterFusiond("r").fusion.method, "random")
        self.assertEqual(RaterFusiond("r").fusion.method, "uniform")
        with self.assertRaisesRegex(ValueError, "Unsupported method=.bogus.; method must be one of"):
            RaterFusiond("r", method="bogus")

    def test_subclass_without_randomizable_rejects_random(self):
        class Plain(RaterFusion):
            pass

        class Plaind(RaterFusiond):
            pass

        with self.assertRaisesRegex(ValueError, "Plain cannot fuse with method='random'"):
            Plain("random")
        with self.assertRaisesRegex(ValueError, "Plaind is not Randomizable"):
            Plaind("r", method="random")

    def test_fuse_returns_staple_result_without_storing_it(self):
        t = RaterFusion("staple")
        out, staple = t.fuse(_items()[0]["raters"])
        self.assertIsNotNone(staple)
        self.assertIsNone(t.staple_sensitivity)
        np.testing.assert_allclose(np.asarray(out), np.asarray(t(_items()[0]["raters"])))
        self.assertIsNotNone(t.staple_sensitivity)


if __name__ == "__main__":
    unittest.main()
