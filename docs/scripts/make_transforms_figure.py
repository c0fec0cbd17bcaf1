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
"""Draw docs/figures/fusion_methods.png: one synthetic 5-rater case fused by every RaterFusion method and the
majority vote smoothed by every LabelSmoothing method. Needs the ``plot`` extra (matplotlib).

    python docs/scripts/make_transforms_figure.py
"""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import torch
from scipy import ndimage

from monai_dml.transforms import LabelSmoothing, RandRaterFusion, RaterFusion, rater_dice_to_majority

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def make_case(size: int = 96, n_raters: int = 5, seed: int = 3) -> torch.Tensor:
    """A blob whose boundary each rater draws with its own bias (dilate/erode) and a smooth random deformation."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    angle = np.arctan2(yy - size / 2, xx - size / 2)
    radius = size * (0.25 + 0.04 * np.sin(3 * angle) + 0.03 * np.cos(5 * angle))
    truth = np.hypot(yy - size / 2, xx - size / 2) <= radius
    raters = []
    for r in range(n_raters):
        bias = (r - n_raters // 2) * 1.5
        warp = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 6) * 40
        field = ndimage.distance_transform_edt(~truth) - ndimage.distance_transform_edt(truth)
        raters.append((field + warp - bias < 0).astype(np.float32))
    return torch.as_tensor(np.stack(raters))


def main() -> None:
    raters = make_case()
    fusions = {m: RaterFusion(m) for m in ("majority", "random", "uniform", "weighted", "staple")}
    for fusion in fusions.values():
        if isinstance(fusion, RandRaterFusion):
            fusion.set_random_state(0)
    fused = {m: fusion(raters) for m, fusion in fusions.items()}
    smoothed = {
        f"LS {m}": LabelSmoothing(method=m, epsilon=0.3 if m == "uniform" else 0.5)(fused["majority"])
        for m in ("uniform", "boundary", "svls")
    }
    panels = {"rater contours": None, **fused, **smoothed}
    fig, axes = plt.subplots(2, 5, figsize=(15, 6.4))
    for ax, (title, img) in zip(axes.ravel(), panels.items(), strict=False):
        if img is None:
            for r, mask in enumerate(raters.numpy()):
                ax.contour(mask, levels=[0.5], colors=[plt.cm.tab10(r)], linewidths=1)
            ax.set_xlim(0, raters.shape[2])
            ax.set_ylim(raters.shape[1], 0)
            ax.set_aspect("equal")
            dice = rater_dice_to_majority(raters)
            title = "5 raters, Dice vs majority:\n" + ", ".join(f"{d:.2f}" for d in dice.tolist())
        else:
            im = ax.imshow(np.asarray(img)[0], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes.ravel()[-1].axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="foreground probability")
    out = os.path.join(os.path.dirname(__file__), "..", "figures", "fusion_methods.png")
    fig.savefig(out, dpi=80, bbox_inches="tight")
    print(f"wrote {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
