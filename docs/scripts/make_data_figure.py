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
"""Draw docs/figures/synthetic_case.png: one synthetic case of each QUBIQ sub-data set D1-D7 with its raters'
contours over the image, and the raters' mean (the uniform soft label). Needs the ``plot`` extra (matplotlib).

    python docs/scripts/make_data_figure.py
"""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import torch

from monai_dml.data import QUBIQ_SUB_DATASETS, synthesize_qubiq_case
from monai_dml.transforms import RaterFusion, rater_dice_to_majority

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(index: int = 2, size: int = 64) -> None:
    keys = [k for k, s in QUBIQ_SUB_DATASETS.items() if s.target_dice is not None]
    fig, axes = plt.subplots(2, len(keys), figsize=(2.4 * len(keys), 5.8))
    cases = {}
    for col, key in enumerate(keys):
        sub = QUBIQ_SUB_DATASETS[key]
        if sub.dataset not in cases:
            cases[sub.dataset] = synthesize_qubiq_case(sub.dataset, index, size=size)
        image, raters = cases[sub.dataset]
        stack = torch.as_tensor(raters[sub.task])
        shown = image[..., 3] if image.ndim == 3 else image  # brain-tumor: the T2 channel
        dice = 100 * float(rater_dice_to_majority(stack).mean())
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(shown.T, cmap="gray")
        colours = plt.cm.tab10(np.linspace(0, 1, 10))
        for r in range(stack.shape[0]):
            top.contour(stack[r].numpy().T, levels=[0.5], colors=[colours[r]], linewidths=0.8)
        top.set_title(f"{key}: {sub.dataset} T{sub.task}\nR={stack.shape[0]}, Dice {dice:.1f} %", fontsize=8)
        soft = RaterFusion("uniform")(stack.float())[0]
        bottom.imshow(soft.numpy().T, cmap="viridis", vmin=0, vmax=1)
        bottom.set_title(f"uniform soft label\n(Table 1: {sub.target_dice:.1f} %)", fontsize=8)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        "monai_dml.data.synthetic: one case per QUBIQ sub-data set, raters' contours (top), raters' mean (bottom); "
        "Dice = this case's mean rater-vs-majority Dice",
        fontsize=9,
    )
    fig.tight_layout()
    out = os.path.join(os.path.dirname(__file__), "..", "figures", "synthetic_case.png")
    fig.savefig(out, dpi=110)
    print(f"wrote {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
