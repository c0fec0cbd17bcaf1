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
Run every bundle and label mode on the synthetic default data and write the table of ``bundles/README.md``:
seconds per training epoch (the bundle's defaults, and the reduced settings used for the metrics) and the
validation-fold metrics each label mode reaches.

    python benchmarks/bench_bundles.py --out docs/bundle_results.md

Each run is ``python -m monai.bundle run`` in a subprocess (train, then train + evaluate), as a user would run it.
On CPU the whole table takes about 40 minutes on 2 cores with the settings below.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLES = os.path.join(REPO, "bundles")

MODES = {
    "qubiq_2d": ["majority", "random", "uniform", "weighted", "staple", "ls"],
    "lits_2d": ["hard", "ls", "kd"],
    "kits_2d": ["hard", "ls", "kd"],
    "lits_3d": ["hard", "ls"],
    "kits_3d": ["hard", "ls", "raters"],
}
# reduced settings for the metric runs (CPU): image/patch size, epochs, batch
REDUCED: dict[str, dict[str, Any]] = {
    "qubiq_2d": {"image_size": 64, "epochs": 100},
    "lits_2d": {"image_size": 64, "epochs": 20},
    "kits_2d": {"image_size": 64, "epochs": 20},
    "lits_3d": {"patch_size": [32, 32, 32], "epochs": 15, "network_def#features": [8, 8, 16, 32, 64, 8]},
    "kits_3d": {"patch_size": [32, 32, 32], "epochs": 15, "network_def#features": [8, 8, 16, 32, 64, 8]},
}
_EPOCH_TIME = re.compile(r"SupervisedTrainer - INFO - Epoch\[(\d+)\] Complete\. Time taken: (\d+):(\d+):([\d.]+)")


def _arg(value: Any) -> str:
    return repr(value) if isinstance(value, bool | list) else str(value)


def run(bundle: str, configs: list[str], **overrides: Any) -> subprocess.CompletedProcess:
    """One ``monai.bundle run`` of ``configs`` in the bundle folder; raises with the log tail on failure."""
    files = [os.path.join("configs", f"{c}.json") for c in configs]
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(files)]
    cmd += ["--meta_file", "configs/metadata.json", "--logging_file", "configs/logging.conf", "--progress", "False"]
    for key, value in overrides.items():
        cmd += [f"--{key}", _arg(value)]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run(cmd, cwd=os.path.join(BUNDLES, bundle), capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{bundle} {configs} {overrides} failed:\n{out.stderr[-3000:]}")
    return out


def epoch_seconds(log: str) -> float:
    """Median training-epoch time from the trainer's log lines."""
    times = sorted(int(h) * 3600 + int(m) * 60 + float(s) for _, h, m, s in _EPOCH_TIME.findall(log))
    if not times:
        raise ValueError("no epoch time in the log")
    return times[len(times) // 2]


def metrics(root: str) -> dict[str, float]:
    """The aggregate metrics ``evaluate.json`` wrote."""
    with open(os.path.join(root, "eval", "metrics.csv")) as f:
        return {row[0]: float(row[1]) for row in csv.reader(f) if row}


def write_teacher(bundle: str, root: str, data: str, out_dir: str) -> None:
    """The hard-label model's probabilities for every case (the KD teacher)."""
    from monai_dml.data import kits_datalist, lits_datalist

    reader = lits_datalist if bundle.startswith("lits") else kits_datalist
    listing = os.path.join(root, "all_cases.json")
    with open(listing, "w") as f:
        json.dump([{"image": e["image"]} for e in reader(data)], f)
    sizes = {k: v for k, v in REDUCED[bundle].items() if k in ("image_size", "patch_size", "network_def#features")}
    run(bundle, ["inference"], bundle_root=root, dataset_dir=data, input_dir=listing, output_dir=out_dir, **sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--out", default=None, help="also write the markdown table to this file")
    parser.add_argument("--skip-default-timing", action="store_true", help="skip the 1-epoch runs at the defaults")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="bench_bundles_")
    lines = [
        "| bundle | s/epoch, defaults | s/epoch, reduced | reduced settings | label mode | Dice | BDice | ECE "
        "| volume bias % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for bundle in args.bundles:
        data = os.path.join(work, bundle, "data")  # the bundle's synthetic default, generated by the first run
        default_time = "-"
        if not args.skip_default_timing:
            out = run(
                bundle,
                ["train"],
                bundle_root=os.path.join(work, bundle, "default"),
                epochs=1,
                dataset_dir=data,
                synthetic_dir=data,
            )
            default_time = f"{epoch_seconds(out.stdout + out.stderr):.1f}"
        reduced = REDUCED[bundle]
        teacher = os.path.join(work, bundle, "teacher")
        for mode in MODES[bundle]:
            root = os.path.join(work, bundle, mode)
            extra = {"teacher_dir": teacher} if mode == "kd" else {}
            kd = ["kd"] if mode == "kd" else []  # KDLoss and the teacher batch key come with configs/kd.json
            start = time.time()
            out = run(
                bundle,
                ["train", *kd],
                bundle_root=root,
                dataset_dir=data,
                synthetic_dir=data,
                label_mode=mode,
                **reduced,
                **extra,
            )
            seconds = epoch_seconds(out.stdout + out.stderr)
            evaluation = {k: v for k, v in reduced.items() if k != "epochs"}
            run(
                bundle,
                ["train", *kd, "evaluate"],
                bundle_root=root,
                dataset_dir=data,
                synthetic_dir=data,
                label_mode=mode,
                **evaluation,
                **extra,
            )
            m = metrics(root)
            if mode == "hard" and "kd" in MODES[bundle]:
                write_teacher(bundle, root, data, teacher)
            settings = ", ".join(f"{k.split('#')[-1]} {v}" for k, v in reduced.items())
            bdice = f"{m['val_bdice']:.3f}" if "val_bdice" in m else "-"
            lines.append(
                f"| {bundle} | {default_time} | {seconds:.1f} | {settings} | {mode} | {m['val_dice']:.3f} | {bdice} | "
                f"{m['val_ece']:.3f} | {m['val_volume_bias']:.1f} |"
            )
            print(lines[-1], f"({time.time() - start:.0f} s)", flush=True)
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
