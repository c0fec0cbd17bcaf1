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
"""Train a tiny 2D UNet on generated multi-rater soft labels with the paper's recipe (0.25 CE + 0.75 DML1) and,
for comparison, with the soft Dice loss (0.25 CE + 0.75 SDL); print Dice and calibration before and after.

Each case is a disc whose boundary three raters draw at different radii; the soft label is their mean. The image
is a blurred, noisy disc. Runs in well under a minute on two CPU cores:

    python examples/demo_soft_labels.py [--iterations 400] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import torch
from monai.networks.nets import UNet
from monai.utils import set_determinism

from monai_dml.losses import DMLCELoss, DMLoss


def make_cases(n: int, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 1, size, size) and 3-rater mean soft labels (n, 1, size, size)."""
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    images, labels = [], []
    for _ in range(n):
        cy, cx = (torch.rand(2, generator=generator) * size * 0.4 + size * 0.3).tolist()
        radius = float(torch.rand(1, generator=generator) * size * 0.12 + size * 0.14)
        dist = ((yy - cy) ** 2 + (xx - cx) ** 2).sqrt()
        raters = [(dist <= radius + shift).float() for shift in (-2.0, 0.0, 2.0)]  # three raters, +-2 px boundary
        labels.append(torch.stack(raters).mean(0, keepdim=True))
        image = torch.sigmoid((radius - dist) / 2.0) + 0.15 * torch.randn(size, size, generator=generator)
        images.append(image.unsqueeze(0))
    return torch.stack(images), torch.stack(labels)


def evaluate(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Soft Dice against the soft label, hard Dice against the majority vote, and mean |p - y|."""
    net.eval()
    with torch.no_grad():
        prob = torch.sigmoid(net(images))
    soft_dice = 1 - DMLoss(variant="dml1", smooth_nr=0, smooth_dr=0)(prob, labels).item()
    majority = (labels > 0.5).float()
    hard_dice = 1 - DMLoss(variant="sdl", smooth_nr=0, smooth_dr=0)((prob > 0.5).float(), majority).item()
    return {"soft Dice": soft_dice, "Dice vs majority": hard_dice, "mean |p - y|": (prob - labels).abs().mean().item()}


def train(variant: str, images: torch.Tensor, labels: torch.Tensor, iterations: int, seed: int) -> torch.nn.Module:
    set_determinism(seed=seed)
    net = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)
    loss_fn = DMLCELoss(sigmoid=True, variant=variant)  # 0.25 CE + 0.75 DML, the paper's recipe
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=iterations, power=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(iterations):
        net.train()
        idx = torch.randint(0, images.shape[0], (8,), generator=g)
        opt.zero_grad()
        loss = loss_fn(net(images[idx]), labels[idx])
        loss.backward()
        opt.step()
        sched.step()
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(args.seed)
    train_x, train_y = make_cases(48, args.size, g)
    test_x, test_y = make_cases(16, args.size, g)

    start = time.time()
    set_determinism(seed=args.seed)
    untrained = UNet(
        spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 16, 32), strides=(2, 2), num_res_units=1
    )
    rows = {"before training": evaluate(untrained, test_x, test_y)}
    for variant in ("dml1", "sdl"):
        net = train(variant, train_x, train_y, args.iterations, args.seed)
        rows[f"after, CE + {variant.upper()}"] = evaluate(net, test_x, test_y)

    names = list(next(iter(rows.values())))
    print(f"{'':22s}" + "".join(f"{n:>18s}" for n in names))
    for label, metrics in rows.items():
        print(f"{label:22s}" + "".join(f"{metrics[n]:18.4f}" for n in names))
    print(
        f"({len(train_x)} training / {len(test_x)} test cases of {args.size}x{args.size}, "
        f"{args.iterations} iterations per loss, {time.time() - start:.1f} s)"
    )


if __name__ == "__main__":
    main()
