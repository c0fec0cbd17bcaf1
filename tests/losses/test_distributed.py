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
"""Batch-pooled domains under DDP: 2 gloo processes x batch 4 must give the loss and parameter gradients of one
process with the whole batch of 8 when ``sync_batch=True`` (and do not without it)."""

from __future__ import annotations

import os
import tempfile
import unittest

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from monai_dml.losses import DMLoss

WORLD = 2


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 2, 6, 6, generator=g)
    y = torch.softmax(torch.randn(8, 3, 6, 6, generator=g) * 3, 1)
    y[2:4] = torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)  # two images without foreground
    return x, y


def _model() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Conv2d(2, 3, kernel_size=3, padding=1)


CONFIGS = [("BI", True), ("BCI", True), ("BI", False)]


def _run(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        x, y = _data()
        part = slice(4 * rank, 4 * rank + 4)
        results = {}
        for phi, sync in CONFIGS:
            model = torch.nn.parallel.DistributedDataParallel(_model())
            loss = DMLoss(softmax=True, phi=phi, sync_batch=sync)(model(x[part]), y[part])
            loss.backward()
            results[(phi, sync)] = {
                "loss": loss.detach(),
                "grads": [p.grad.detach().clone() for p in model.parameters()],
            }
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _single(phi: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model = _model()
    x, y = _data()
    loss = DMLoss(softmax=True, phi=phi)(model(x), y)
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]


class TestSyncBatch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with tempfile.TemporaryDirectory() as tmp:
            mp.spawn(_run, args=(os.path.join(tmp, "init"), tmp), nprocs=WORLD, join=True)
            cls.results = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(WORLD)]

    def test_global_batch(self):
        for phi in ("BI", "BCI"):
            loss, grads = _single(phi)
            for rank_results in self.results:
                result = rank_results[(phi, True)]
                torch.testing.assert_close(result["loss"], loss, rtol=1e-5, atol=1e-6)
                for got, want in zip(result["grads"], grads, strict=True):
                    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)

    def test_without_sync_each_rank_pools_its_own_batch(self):
        loss, _ = _single("BI")
        self.assertGreater(abs(float(self.results[0][("BI", False)]["loss"]) - float(loss)), 1e-4)


if __name__ == "__main__":
    unittest.main()
