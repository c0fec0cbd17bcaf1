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
"""Forward + backward time and extra peak memory of DMLoss against MONAI's DiceLoss(soft_label=True), DML1 typed in
plain torch, DMLoss under torch.compile and a bare memory pass, on soft targets. Run by hand; results go to
docs/benchmarks.md.

    python benchmarks/bench_losses.py [--repeats 10] [--device cpu|cuda] [--amp bf16]
        [--shapes 8,3,512,512 2,3,128,128,128] [--modes logits prob]

Two modes: ``logits`` feeds logits with ``softmax=True`` (what a training step runs), ``prob`` feeds softmax
probabilities (the loss alone). ``bare`` is the floor of any loss: ``x.sum() + y.sum()`` forward and one write of
the gradient backward.

Time: all candidates run in one subprocess, interleaved (round ``r`` times every candidate once, in a rotating
order), so that the load of a shared machine hits them alike; reported are the median over the rounds and its ratio
to MONAI's median of the same run. Memory: each candidate runs in a fresh subprocess. On CUDA it is
``torch.cuda.max_memory_allocated`` minus the memory held before the passes; on CPU glibc's mmap threshold is fixed
at 64 KiB, so every tensor buffer is mapped and unmapped on its own, and the extra peak is the peak resident set
size (``ru_maxrss``) minus the resident size just before the first pass. Both are relative to the logits, the
target and the logits' gradient buffer existing already, so they count what the loss itself (softmax included)
keeps and allocates. ``--amp bf16`` runs every pass under ``torch.autocast`` with bfloat16 on fp32 logits.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

CANDIDATES = [
    "monai",
    "plain",
    "dmloss_dml1",
    "dmloss_dml2",
    "dmloss_sdl",
    "unfused_dml1",
    "unvalidated_dml1",
    "compile_dml1",
    "bare",
]


def plain_dml1(x: torch.Tensor, target: torch.Tensor, softmax: bool) -> torch.Tensor:
    """DML1 written directly from Eq. (4), as a user would without this package."""
    if softmax:
        x = torch.softmax(x, 1)
    dims = tuple(range(2, x.ndim))
    total = (x + target).sum(dims)
    diff = (x - target).abs().sum(dims)
    return (1 - (total - diff + 1e-5) / (total + 1e-5)).mean()


class _Bare(torch.autograd.Function):
    """The floor: read both tensors once forward, write the gradient once backward."""

    @staticmethod
    def forward(ctx, x, y):  # type: ignore[override]
        ctx.shape, ctx.dtype = x.shape, x.dtype
        return x.sum() + y.sum()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return torch.empty(ctx.shape, dtype=ctx.dtype, device=g.device).copy_(g.expand(ctx.shape)), None


def make_loss(name: str, softmax: bool):
    if name == "monai":
        from monai.losses import DiceLoss

        return DiceLoss(softmax=softmax, soft_label=True)
    if name == "plain":
        return lambda x, y: plain_dml1(x, y, softmax)
    if name == "bare":
        return _Bare.apply
    from monai_dml.losses import DMLoss

    kind, variant = name.split("_")
    options = {"unfused": {"fused": False}, "unvalidated": {"validate": False}}.get(kind, {})
    loss = DMLoss(softmax=softmax, variant=variant, **options)
    return torch.compile(loss) if kind == "compile" else loss


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _inputs(shape: list[int], device: str, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    dev = torch.device(device)
    logits = torch.randn(*shape, device=dev)
    if mode == "prob":  # the loss alone, on softmax probabilities
        logits = torch.softmax(logits, 1)
    logits.requires_grad_(True)
    target = torch.softmax(torch.randn(*shape, device=dev), 1)
    logits.grad = torch.zeros_like(logits)  # the gradient buffer exists in training anyway
    return logits, target


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _pass(loss_fn, logits: torch.Tensor, target: torch.Tensor, device: str, amp: str | None) -> None:
    ctx = torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    with ctx:
        loss = loss_fn(logits, target)
    loss.backward()
    del loss


def run_timing(shape: list[int], repeats: int, device: str, mode: str, amp: str | None, names: list[str]) -> dict:
    """Interleaved timing of every candidate in this process: median seconds per forward + backward pass."""
    logits, target = _inputs(shape, device, mode)
    losses = {name: make_loss(name, softmax=mode == "logits") for name in names}
    for name in names:  # warm-up (and compilation) outside the timed rounds
        _pass(losses[name], logits, target, device, amp)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            _sync(device)
            start = time.perf_counter()
            _pass(losses[name], logits, target, device, amp)
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def run_memory(name: str, shape: list[int], device: str, mode: str, amp: str | None) -> int:
    """Extra peak memory of two forward + backward passes of one candidate, in a fresh process."""
    logits, target = _inputs(shape, device, mode)
    loss_fn = make_loss(name, softmax=mode == "logits")
    if name.startswith("compile"):  # compile outside the measurement (its workspace is not the loss's memory)
        _pass(loss_fn, logits, target, device, amp)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        before = rss_bytes()
    for _ in range(2):
        _pass(loss_fn, logits, target, device, amp)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - before)
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", choices=["bf16"], default=None, help="bfloat16 autocast around every pass")
    parser.add_argument("--shapes", nargs="+", default=["8,3,512,512", "2,3,128,128,128"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["logits"], choices=["prob", "logits"])
    parser.add_argument("--losses", nargs="+", default=CANDIDATES, choices=CANDIDATES)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--child", nargs=3, metavar=("WHAT", "SHAPE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    names = [n for n in CANDIDATES if n in args.losses]
    if "monai" not in names:
        names.insert(0, "monai")
    if args.child:
        what, shape = args.child[0], [int(s) for s in args.child[1].split(",")]
        if what == "time":
            print(json.dumps(run_timing(shape, args.repeats, args.device, args.child[2], args.amp, names)))
        else:
            print(json.dumps(run_memory(what, shape, args.device, args.child[2], args.amp)))
        return

    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    base = [sys.executable, __file__, "--repeats", str(args.repeats), "--device", args.device]
    base += ["--threads", str(args.threads), "--losses", *names] + (["--amp", args.amp] if args.amp else [])

    def child(what: str, shape: str, mode: str):
        cmd = base + ["--child", what, shape, mode]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    name_gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(
        f"device={args.device} ({name_gpu}) amp={args.amp} torch={torch.__version__} threads={args.threads} "
        f"repeats={args.repeats} (interleaved)"
    )
    results = []
    for mode, shape in itertools.product(args.modes, args.shapes):
        times = child("time", shape, mode)
        memory = {name: child(name, shape, mode) for name in names}
        what = "probabilities in (loss alone)" if mode == "prob" else "logits in (softmax inside the loss)"
        print(f"\nshape ({shape}), {what}")
        print(f"{'loss':14s} {'time ms':>9s} {'x MONAI':>8s} {'extra peak MiB':>15s} {'x MONAI':>8s} {'x bare':>7s}")
        for name in names:
            t, m = times[name], memory[name]
            bare = f"{t / times['bare']:7.2f}" if "bare" in times else ""
            print(
                f"{name:14s} {1e3 * t:9.1f} {t / times['monai']:8.2f} {m / 2**20:15.1f} "
                f"{m / memory['monai']:8.2f} {bare}"
            )
            results.append({"mode": mode, "shape": shape, "loss": name, "time_s": t, "extra_peak_bytes": m})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name_gpu, "amp": args.amp, "torch": torch.__version__, "rows": results}, f, indent=1)


if __name__ == "__main__":
    main()
