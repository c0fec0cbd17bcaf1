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
"""Forward + backward time and extra peak memory of DMLoss against MONAI's DiceLoss(soft_label=True) and a plain
torch formula of DML1, on softmax inputs with soft targets. Run by hand; results go to docs/benchmarks.md.

    python benchmarks/bench_losses.py [--repeats 10] [--device cpu|cuda] [--shapes 8,3,512,512 2,3,96,96,96]

Two modes: ``prob`` feeds softmax probabilities to the loss (the loss alone), ``logits`` feeds logits with
``softmax=True`` (what a training loop runs; softmax and its backward are then the same for every loss).
Time: median of ``repeats`` forward+backward passes after one warm-up. Memory: on CUDA
``torch.cuda.max_memory_allocated`` minus the memory held before the pass; on CPU each (loss, shape) runs in a fresh
subprocess with glibc's mmap threshold fixed at 64 KiB, so every tensor buffer is mapped and unmapped on its own, and
the extra peak is the peak resident set size (``ru_maxrss``) minus the resident size just before the first pass.
Both are relative to the logits, the target and the parameters' gradient buffer existing already, so they count
what the loss itself (softmax included) keeps and allocates.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

LOSSES = ["monai", "plain", "dmloss_dml1", "dmloss_dml2", "dmloss_sdl"]


def plain_dml1(x: torch.Tensor, target: torch.Tensor, softmax: bool) -> torch.Tensor:
    """DML1 written directly from Eq. (4), as a user would without this package."""
    if softmax:
        x = torch.softmax(x, 1)
    dims = tuple(range(2, x.ndim))
    total = (x + target).sum(dims)
    diff = (x - target).abs().sum(dims)
    return (1 - (total - diff + 1e-5) / (total + 1e-5)).mean()


def make_loss(name: str, softmax: bool):
    if name == "monai":
        from monai.losses import DiceLoss

        return DiceLoss(softmax=softmax, soft_label=True)
    if name == "plain":
        return lambda x, y: plain_dml1(x, y, softmax)
    from monai_dml.losses import DMLoss

    return DMLoss(softmax=softmax, variant=name.split("_")[1])


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_one(name: str, shape: list[int], repeats: int, device: str, mode: str) -> dict:
    torch.manual_seed(0)
    dev = torch.device(device)
    logits = torch.randn(*shape, device=dev)
    if mode == "prob":  # the loss alone, on softmax probabilities
        logits = torch.softmax(logits, 1)
    logits.requires_grad_(True)
    target = torch.softmax(torch.randn(*shape, device=dev), 1)
    loss_fn = make_loss(name, softmax=mode == "logits")
    logits.grad = torch.zeros_like(logits)  # the gradient buffer exists in training anyway
    if dev.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        before = rss_bytes()
    times = []
    for _ in range(repeats + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = loss_fn(logits, target)
        loss.backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        del loss
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {"loss": name, "shape": shape, "time_s": statistics.median(times[1:]), "extra_peak_bytes": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shapes", nargs="+", default=["8,3,512,512", "2,3,96,96,96"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["prob", "logits"], choices=["prob", "logits"])
    parser.add_argument("--child", nargs=3, metavar=("LOSS", "SHAPE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        shape = [int(s) for s in args.child[1].split(",")]
        print(json.dumps(run_one(args.child[0], shape, args.repeats, args.device, args.child[2])))
        return

    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    print(f"device={args.device} torch={torch.__version__} threads={args.threads} repeats={args.repeats}")
    for mode, shape in itertools.product(args.modes, args.shapes):
        rows = {}
        for name in LOSSES:
            cmd = [sys.executable, __file__, "--child", name, shape, mode, "--repeats", str(args.repeats)]
            cmd += ["--device", args.device, "--threads", str(args.threads)]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            rows[name] = json.loads(out.strip().splitlines()[-1])
        ref = rows["monai"]
        what = "probabilities in (loss alone)" if mode == "prob" else "logits in (softmax inside the loss)"
        print(f"\nshape ({shape}), {what}")
        print(f"{'loss':14s} {'time ms':>9s} {'x MONAI':>8s} {'extra peak MiB':>15s} {'x MONAI':>8s}")
        for name, r in rows.items():
            t, m = r["time_s"], r["extra_peak_bytes"]
            print(
                f"{name:14s} {1e3 * t:9.1f} {t / ref['time_s']:8.2f} {m / 2**20:15.1f} "
                f"{m / ref['extra_peak_bytes']:8.2f}"
            )


if __name__ == "__main__":
    main()
