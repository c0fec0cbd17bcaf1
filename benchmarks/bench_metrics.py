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
"""Speed of the metrics on one 128^3 volume with 3 classes (softmax probabilities against a soft label), with
MONAI's nearest counterparts in the same run: ``DiceMetric`` on binarized maps and ``CalibrationErrorMetric``
(classwise, the setting that equals ``compute_ece(mode="classwise")``).

    python benchmarks/bench_metrics.py [--size 128] [--repeats 3]
"""

from __future__ import annotations

import argparse

import torch
from _timing import median_time
from monai.metrics import CalibrationErrorMetric, DiceMetric

from monai_dml.metrics import (
    compute_binarized_dice,
    compute_ece,
    compute_kde_calibration_error,
    compute_soft_dice,
    compute_volume_bias,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    shape = (1, 3, args.size, args.size, args.size)
    pred = torch.softmax(torch.randn(*shape, generator=g) * 3, 1)
    label = torch.softmax(torch.randn(*shape, generator=g) * 3, 1)
    hard_pred = torch.nn.functional.one_hot(pred.argmax(1), 3).movedim(-1, 1).float()
    hard_label = torch.nn.functional.one_hot(label.argmax(1), 3).movedim(-1, 1).float()
    rows = [
        ("soft Dice", lambda: compute_soft_dice(pred, label)),
        ("MONAI DiceMetric (hard maps)", lambda: DiceMetric(reduction="none")(hard_pred, hard_label)),
        ("binarized Dice (9 levels)", lambda: compute_binarized_dice(pred, label)),
        ("ECE top-label", lambda: compute_ece(pred, hard_label)),
        ("ECE classwise", lambda: compute_ece(pred, hard_label, mode="classwise")),
        ("MONAI CalibrationErrorMetric", lambda: CalibrationErrorMetric(metric_reduction="none")(pred, hard_label)),
        ("KDE calibration error (2000 vox)", lambda: compute_kde_calibration_error(pred, hard_label)),
        ("volume bias", lambda: compute_volume_bias(pred, label)),
    ]
    print(f"shape {shape}, torch={torch.__version__}, threads={args.threads}, median of {args.repeats}")
    for name, fn in rows:
        print(f"{name:34s} {median_time(fn, args.repeats):8.3f} s")


if __name__ == "__main__":
    main()
