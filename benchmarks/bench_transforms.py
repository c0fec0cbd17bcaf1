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
"""Throughput of RaterFusion for every method against a reference in the same run:

- ``majority``: MONAI's ``VoteEnsemble`` (for binary masks it rounds the rater mean, the same vote);
- ``uniform``: MONAI's ``MeanEnsemble``;
- ``weighted``: a plain NumPy loop (Dice of each rater against the majority, then the weighted mean);
- ``random``: NumPy indexing of one rater;
- ``staple``: ITK's ``STAPLEImageFilter`` called directly, without this package's checks and conversions.

    python benchmarks/bench_transforms.py [--repeats 5]

Cases: 7 raters at 512 x 512 (QUBIQ brain growth has 7) and 3 raters at 128^3 (KiTS21-style annotations).
Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from _timing import median_time
from monai.transforms import MeanEnsemble, VoteEnsemble

from monai_dml.transforms import RaterFusion


def make_raters(n_raters: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Binary masks of a sphere/disc whose radius each rater draws differently, (R, *shape) float32."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.arange(s, dtype=np.float32) - s / 2 for s in shape], indexing="ij")
    dist = np.sqrt(sum(g**2 for g in grid))
    base = min(shape) * 0.3
    return np.stack([(dist <= base + rng.normal(0, 2)).astype(np.float32) for _ in range(n_raters)])


def naive_weighted(raters: np.ndarray) -> np.ndarray:
    majority = (raters.sum(0) >= raters.shape[0] // 2 + 1).astype(np.float32)
    weights = []
    for r in raters:
        weights.append(2 * np.sum(r * majority) / (np.sum(r) + np.sum(majority)))
    w = np.asarray(weights) / np.sum(weights)
    out = np.zeros_like(raters[0])
    for wi, r in zip(w, raters, strict=True):
        out += wi * r
    return out[None]


def itk_staple(raters: np.ndarray) -> np.ndarray:
    import itk

    image_type = itk.Image[itk.F, raters.ndim - 1]
    flt = itk.STAPLEImageFilter[image_type, image_type].New()
    for i, r in enumerate(raters):
        flt.SetInput(i, itk.image_from_array(np.ascontiguousarray(r)))
    flt.SetForegroundValue(1.0)
    flt.Update()
    return itk.array_from_image(flt.GetOutput())[None]


def reference(method: str) -> Callable[[np.ndarray], object]:
    if method == "majority":
        return lambda r: VoteEnsemble()(torch.as_tensor(r)[:, None])
    if method == "uniform":
        return lambda r: MeanEnsemble()(torch.as_tensor(r)[:, None])
    if method == "weighted":
        return naive_weighted
    if method == "random":
        rng = np.random.default_rng(0)
        return lambda r: r[rng.integers(len(r))][None]
    return itk_staple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch={torch.__version__} threads={args.threads} repeats={args.repeats}")
    for n_raters, shape in ((7, (512, 512)), (3, (128, 128, 128))):
        raters = make_raters(n_raters, shape)
        tensor = torch.as_tensor(raters)
        voxels = int(np.prod(shape))
        print(f"\n{n_raters} raters at {'x'.join(map(str, shape))}")
        print(f"{'method':10s} {'RaterFusion ms':>15s} {'Mvox/s':>8s} {'reference ms':>13s} {'ratio':>6s}")
        for method in ("majority", "random", "uniform", "weighted", "staple"):
            ours = median_time(lambda m=method, t=tensor: RaterFusion(m)(t), args.repeats)
            ref = median_time(lambda m=method, r=raters: reference(m)(r), args.repeats)
            print(f"{method:10s} {1e3 * ours:15.1f} {voxels / ours / 1e6:8.1f} {1e3 * ref:13.1f} {ours / ref:6.2f}")


if __name__ == "__main__":
    main()
