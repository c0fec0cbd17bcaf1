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
"""
The overhead of the bundle layer on a training epoch: ``qubiq_2d`` trained by ``python -m monai.bundle run`` against
a bare PyTorch loop with the same network, cases, preprocessing, batch, shuffling, loss, optimizer and schedule.

    python benchmarks/bench_overhead.py --repeats 3 --epochs 4 --profile

Both sides run in subprocesses, interleaved (bundle, bare, bundle, bare, ...), with the same torch thread count.
An epoch is timed from the end of the previous epoch to the end of its last ``EPOCH_COMPLETED`` handler (the
bundle: LR schedule, TensorBoard, the last checkpoint) or its scheduler step (bare); the first epoch (warm-up) is
left out of the per-epoch median. Start-up is the time from launching the process to the first epoch's start
(imports, config parsing, reading and caching the cases, building the network). Validation is switched off
(``val_interval`` above ``epochs``) so that only training is compared. ``--profile`` adds one run of each side
under ``cProfile`` (the last epoch only) and prints the functions whose own time differs most.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE = os.path.join(REPO, "bundles", "qubiq_2d")
HERE = os.path.dirname(os.path.abspath(__file__))


class GcClock:
    """The seconds and the number of Python garbage collections (``gc.callbacks``) from :py:meth:`start` on."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._t = 0.0

    def start(self) -> None:
        """Start counting."""
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t
            self.collections += 1


class EpochTimer:
    """
    Attach to an ignite engine last, so that its ``EPOCH_COMPLETED`` handler runs after every other one. Writes the
    wall-clock times (``time.time()``) of the first epoch's start and of each epoch's end to ``path`` as JSON when
    the run completes; with ``profile`` set, profiles the last epoch with cProfile into that file.
    """

    def __init__(self, path: str, profile: str | None = None) -> None:
        self.path = path
        self.profile = profile
        self.start = 0.0
        self.ends: list[float] = []
        self._profiler: cProfile.Profile | None = None
        self.gc = GcClock()

    def attach(self, engine: Any) -> EpochTimer:
        """Register the events on ``engine`` and return self."""
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        engine.add_event_handler(Events.COMPLETED, self._completed)
        return self

    def _epoch_started(self, engine: Any) -> None:
        if not self.start:
            self.start = time.time()
            self.gc.start()
        if self.profile and engine.state.epoch == engine.state.max_epochs:
            self._profiler = cProfile.Profile()
            self._profiler.enable()

    def _epoch_completed(self, engine: Any) -> None:
        self.ends.append(time.time())
        if self._profiler is not None and self.profile:
            self._profiler.disable()
            self._profiler.dump_stats(self.profile)
            self._profiler = None

    def _completed(self, engine: Any) -> None:
        import torch

        write_times(self.path, self.start, self.ends, torch.get_num_threads(), self.gc)


def write_times(path: str, start: float, ends: list[float], threads: int, clock: GcClock) -> None:
    """The JSON record both sides write."""
    record = {"start": start, "ends": ends, "threads": threads, "gc": clock.seconds, "gcs": clock.collections}
    with open(path, "w") as f:
        json.dump(record, f)


def train_config() -> dict[str, Any]:
    """The plain values of ``configs/train.json`` (the bare loop takes its settings from there)."""
    with open(os.path.join(BUNDLE, "configs", "train.json")) as f:
        return json.load(f)


def bare_components(config: dict[str, Any], epochs: int) -> tuple[Any, Any, Any, Any]:
    """
    The network, loss, optimizer and scheduler of ``train.json`` built directly (no config parser, no bundle layer)
    from the config's values: ``build_network``, ``DMLCELoss``, SGD and PolynomialLR.
    """
    import torch

    from monai_dml.losses import DMLCELoss
    from monai_dml.networks import build_network

    network = build_network(
        config["network_name"], spatial_dims=2, in_channels=1, out_channels=1, pretrained=config["pretrained"]
    )
    loss = DMLCELoss(
        sigmoid=True,
        variant=config["variant"],
        phi=config["phi"],
        smooth_nr=config["epsilon"],
        smooth_dr=config["epsilon"],
        lambda_ce=0.25,
        lambda_dml=0.75,
        sync_batch=config["sync_batch"],
        include_background=config["include_background"],
    )
    optimizer = torch.optim.SGD(
        network.parameters(),
        lr=config["learning_rate"],
        momentum=config["momentum"],
        weight_decay=config["weight_decay"],
    )
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=epochs, power=config["poly_power"])
    return network, loss, optimizer, scheduler


def bare_cases(data_dir: str, image_size: int, label_mode: str) -> tuple[Any, Any]:
    """
    The training cases of fold 0 read and preprocessed once by the same transforms as ``train.json``'s
    ``deterministic_transforms`` and label recipe, stacked as plain tensors ``(N, 1, H, W)``.
    """
    import torch
    from monai.transforms import Compose, LoadImaged, Resized, ScaleIntensityd

    from monai_dml.data import qubiq_datalist
    from monai_dml.transforms import LoadRatersd, PlanarChannelsd, RaterFusiond

    cases = [e for e in qubiq_datalist(data_dir, datasets=["kidney"], tasks=[1]) if e["fold"] != 0]
    size = [image_size, image_size]
    chain = Compose(
        [
            LoadImaged("image", reader="NibabelReader", image_only=True),
            PlanarChannelsd("image"),
            LoadRatersd("raters", reader="NibabelReader"),
            PlanarChannelsd("raters", stacked=True),
            ScaleIntensityd("image", minv=0.0, maxv=1.0, channel_wise=True),
            Resized("image", spatial_size=size, mode="bilinear"),
            Resized("raters", spatial_size=size, mode="nearest"),
            RaterFusiond("raters", output_key="label", method=label_mode),
        ]
    )
    items = [chain(dict(e)) for e in cases]
    images = torch.stack([torch.as_tensor(i["image"]).as_subclass(torch.Tensor) for i in items])
    labels = torch.stack([torch.as_tensor(i["label"]).as_subclass(torch.Tensor) for i in items])
    return images.float().contiguous(), labels.float().contiguous()


def bare_main(args: argparse.Namespace) -> None:
    """The bare side (run in its own process): train ``args.epochs`` epochs and write the times."""
    import torch
    from monai.utils import set_determinism

    torch.set_num_threads(args.threads)
    set_determinism(seed=0)
    config = train_config()
    images, labels = bare_cases(args.data, args.image_size, config["label_mode"])
    network, loss_fn, optimizer, scheduler = bare_components(config, args.epochs)
    network.train()
    batch = args.batch_size
    profiler = cProfile.Profile() if args.profile_out else None
    if args.gc_freeze:
        gc.freeze()
    clock = GcClock()
    start = time.time()
    clock.start()
    ends = []
    for epoch in range(args.epochs):
        if profiler is not None and epoch == args.epochs - 1:
            profiler.enable()
        order = torch.randperm(len(images))
        for i in range(0, len(images), batch):
            index = order[i : i + batch]
            optimizer.zero_grad()
            loss = loss_fn(network(images[index]), labels[index])
            loss.backward()
            optimizer.step()
            loss.item()  # what a loop logs
        scheduler.step()
        ends.append(time.time())
        if profiler is not None and epoch == args.epochs - 1:
            profiler.disable()
            profiler.dump_stats(args.profile_out)
    write_times(args.times, start, ends, torch.get_num_threads(), clock)


def components(args: argparse.Namespace) -> list[str]:
    """
    The suspected parts of the overhead timed alone, interleaved in one process: one training step (forward,
    loss, backward, SGD step) on the first batch with plain tensors or MetaTensors (what MONAI's collated batches
    are) and with ``zero_grad(set_to_none=True)`` (PyTorch's default) or ``False`` (SupervisedTrainer's default);
    and the last checkpoint (model + optimizer, ``torch.save`` to a temporary file and ``os.replace``, as
    :py:class:`monai_dml.handlers.AtomicCheckpointSaver` writes it every epoch).
    """
    import torch
    from monai.data import MetaTensor
    from monai.utils import set_determinism

    torch.set_num_threads(args.threads)
    set_determinism(seed=0)
    config = train_config()
    images, labels = bare_cases(args.data, args.image_size, config["label_mode"])
    images, labels = images[: args.batch_size], labels[: args.batch_size]
    network, loss_fn, optimizer, _ = bare_components(config, args.epochs)
    network.train()
    variants = {
        "plain tensors, set_to_none=True (bare)": (images, labels, True),
        "MetaTensor batch, set_to_none=True": (MetaTensor(images), MetaTensor(labels), True),
        "plain tensors, set_to_none=False": (images, labels, False),
        "MetaTensor batch, set_to_none=False (trainer)": (MetaTensor(images), MetaTensor(labels), False),
    }

    def step(x: Any, y: Any, to_none: bool) -> None:
        optimizer.zero_grad(set_to_none=to_none)
        loss = loss_fn(network(x), y)
        loss.backward()
        optimizer.step()
        loss.item()

    path = os.path.join(args.work, "checkpoint_last.pt")

    def save() -> None:
        torch.save({"model": network.state_dict(), "optimizer": optimizer.state_dict()}, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)

    times: dict[str, list[float]] = {name: [] for name in [*variants, "checkpoint save"]}
    for v in variants.values():  # warm-up
        step(*v)
    save()
    for _ in range(args.repeats * 2):
        for name, v in variants.items():
            start = time.perf_counter()
            step(*v)
            times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        save()
        times["checkpoint save"].append(time.perf_counter() - start)
    size = os.path.getsize(path) / 2**20
    lines = [
        f"one step on a batch of {len(images)} and one last-checkpoint save ({size:.0f} MiB), in one process, "
        f"interleaved, {args.repeats * 2} times each; median (min-max) s",
        "",
        "| part | s |",
        "|---|---|",
    ]
    lines += [f"| {name} | {_spread(t)} |" for name, t in times.items()]
    return lines


def _env(threads: int) -> dict[str, str]:
    path = os.pathsep.join([REPO, HERE, os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, PYTHONWARNINGS="ignore", OMP_NUM_THREADS=str(threads))


def _record(times_path: str, launched: float, finished: float) -> dict[str, Any]:
    with open(times_path) as f:
        record = json.load(f)
    ends = [record["start"], *record["ends"]]
    epochs = [b - a for a, b in zip(ends[:-1], ends[1:], strict=True)]
    return {
        "epochs": epochs,
        "epoch": statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0],
        "startup": record["start"] - launched,
        "wall": finished - launched,
        "threads": record["threads"],
        "gc": record["gc"] / len(epochs),
        "gcs": record["gcs"] / len(epochs),
    }


def run_bundle(args: argparse.Namespace, work: str, profile: str | None = None) -> dict[str, Any]:
    """One ``monai.bundle run`` of ``train.json`` with the timer attached by an extra config file."""
    root = tempfile.mkdtemp(prefix="bundle_", dir=work)
    times = os.path.join(root, "times.json")
    extra = os.path.join(root, "timer.json")
    timer = {"_target_": "bench_overhead.EpochTimer", "path": times, "profile": profile}
    with open(extra, "w") as f:
        freeze = ["$__import__('gc').freeze()"] if args.gc_freeze else []
        run = [*freeze, "$@epoch_timer.attach(@train#trainer)", "$@train#trainer.run()"]
        json.dump({"epoch_timer": timer, "run": run}, f)
    files = [os.path.join(BUNDLE, "configs", "train.json"), extra]
    overrides = {
        "bundle_root": root,
        "dataset_dir": args.data,
        "synthetic_dir": args.data,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "val_interval": args.epochs + 1,
        "num_workers": 0,
        "progress": False,
    }
    overrides.update(dict(o.split("=", 1) for o in args.override))
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(files)]
    cmd += ["--meta_file", os.path.join(BUNDLE, "configs", "metadata.json")]
    cmd += ["--logging_file", os.path.join(BUNDLE, "configs", "logging.conf")]
    for key, value in overrides.items():
        cmd += [f"--{key}", str(value)]
    launched = time.time()
    out = subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True, env=_env(args.threads))
    finished = time.time()
    if out.returncode != 0:
        raise RuntimeError(f"bundle run failed:\n{out.stderr[-3000:]}")
    return _record(times, launched, finished)


def run_bare(args: argparse.Namespace, work: str, profile: str | None = None) -> dict[str, Any]:
    """The bare loop in a subprocess (this script with ``--bare``)."""
    times = os.path.join(tempfile.mkdtemp(prefix="bare_", dir=work), "times.json")
    cmd = [sys.executable, os.path.abspath(__file__), "--bare", "--data", args.data, "--times", times]
    cmd += ["--epochs", str(args.epochs), "--image-size", str(args.image_size), "--batch-size", str(args.batch_size)]
    cmd += ["--threads", str(args.threads)] + (["--profile-out", profile] if profile else [])
    cmd += ["--gc-freeze"] if args.gc_freeze else []
    launched = time.time()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=_env(args.threads))
    finished = time.time()
    if out.returncode != 0:
        raise RuntimeError(f"bare run failed:\n{out.stderr[-3000:]}")
    return _record(times, launched, finished)


def own_times(path: str) -> dict[str, float]:
    """Own (exclusive) seconds per function of a cProfile dump, keyed ``file:line(name)``."""
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for (file, line, name), (_, _, tottime, _, _) in stats.items():
        key = f"{os.path.relpath(file, REPO) if file.startswith(REPO) else _short(file)}:{line}({name})"
        out[key] = out.get(key, 0.0) + tottime
    return out


def _short(file: str) -> str:
    marker = "site-packages" + os.sep
    return file.split(marker, 1)[1] if marker in file else file


def profile_diff(bundle: str, bare: str, top: int) -> list[str]:
    """Markdown rows of the functions whose own time in one profiled epoch differs most (bundle minus bare)."""
    a, b = own_times(bundle), own_times(bare)
    rows = sorted(((a.get(k, 0.0) - b.get(k, 0.0), k) for k in set(a) | set(b)), reverse=True)[:top]
    lines = [
        f"profiled epoch, own time summed: bundle {sum(a.values()):.3f} s, bare {sum(b.values()):.3f} s",
        "",
        "| function | bundle s | bare s | difference s |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{k}` | {a.get(k, 0.0):.3f} | {b.get(k, 0.0):.3f} | {d:+.3f} |" for d, k in rows]
    return lines


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, interleaved")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cases", type=int, default=10, help="synthetic cases (fold 0 of 5 validates)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of both sides (OMP_NUM_THREADS)")
    parser.add_argument("--profile", action="store_true", help="also profile the last epoch of one run of each")
    parser.add_argument("--top", type=int, default=15, help="rows of the profile difference")
    parser.add_argument(
        "--override", nargs="*", default=[], metavar="KEY=VALUE", help="more bundle overrides (the bundle side only)"
    )
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() before training on both sides (see the docs)"
    )
    parser.add_argument("--components", action="store_true", help="also time the suspected parts alone")
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--out", default=None, help="also write the markdown to this file")
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--times", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_main(args)
        return
    work = args.work or tempfile.mkdtemp(prefix="bench_overhead_")
    args.data = os.path.join(work, "data")
    from monai_dml.bundle import QubiqData

    data = QubiqData(args.data, synthetic_dir=args.data, synthetic_cases=args.cases).prepare()  # as the bundle would
    results: dict[str, list[dict[str, Any]]] = {"bundle": [], "bare": []}
    for i in range(args.repeats):
        for side, fn in (("bundle", run_bundle), ("bare", run_bare)):
            r = fn(args, work)
            results[side].append(r)
            print(
                f"run {i + 1} {side}: epochs {[round(e, 3) for e in r['epochs']]} s, start-up {r['startup']:.2f} s, "
                f"wall {r['wall']:.2f} s, threads {r['threads']}, gc {r['gc']:.3f} s/epoch",
                flush=True,
            )
    bundle_epoch = [r["epoch"] for r in results["bundle"]]
    bare_epoch = [r["epoch"] for r in results["bare"]]
    ratios = [a / b for a, b in zip(bundle_epoch, bare_epoch, strict=True)]
    import monai
    import torch

    extra = f", bundle overrides {' '.join(args.override)}" if args.override else ""
    extra += ", gc.freeze() before training" if args.gc_freeze else ""
    lines = [
        f"qubiq_2d, {args.cases} synthetic cases ({len(data.train_data())} training), "
        f"{args.image_size} px, batch {args.batch_size}, {args.epochs} epochs, {args.threads} torch thread(s), "
        f"{args.repeats} interleaved runs per side{extra}; torch {torch.__version__}, MONAI {monai.__version__}. "
        "Median (min-max) over runs; a run's epoch time is the median of its epochs after the first.",
        "",
        "| side | s/epoch | first epoch s | start-up s | process wall s | gc s/epoch | collections/epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for side in ("bundle", "bare"):
        rs = results[side]
        lines.append(
            f"| {side} | {_spread([r['epoch'] for r in rs])} | {_spread([r['epochs'][0] for r in rs])} | "
            f"{_spread([r['startup'] for r in rs])} | {_spread([r['wall'] for r in rs])} | "
            f"{_spread([r['gc'] for r in rs])} | {statistics.median(r['gcs'] for r in rs):.0f} |"
        )
    lines += ["", f"bundle/bare per epoch (paired by run): {_spread(ratios)}"]
    if args.profile:
        prof_bundle, prof_bare = os.path.join(work, "bundle.prof"), os.path.join(work, "bare.prof")
        run_bundle(args, work, profile=prof_bundle)
        run_bare(args, work, profile=prof_bare)
        lines += ["", *profile_diff(prof_bundle, prof_bare, args.top)]
    if args.components:
        args.work = work
        lines += ["", *components(args)]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
