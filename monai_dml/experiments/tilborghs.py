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
Tilborghs et al. (2022), Table 1: the Dice loss with missing or empty labels, as a function of the domain Phi and
the smoothing epsilon.

A generated two-structure set stands in for ACDC/BRATS. Every image holds a bright ellipse (structure 1, always
labelled) and a dark ellipse (structure 2). A fraction of the cases are of "type B" (the paper's MYO_ES / LGG): their
structure 2 carries a fine checkerboard texture that a network can learn to recognise, but it is still a dark
ellipse, so a network that never saw it labelled still segments it. Under *partial labelling* the structure-2 label
of every type-B training case is replaced by an empty map (structure 1 stays labelled); under *full labelling* all
labels are kept. The validation set is always fully labelled.

A small MONAI UNet (sigmoid per structure) is trained with :py:class:`monai_dml.losses.DMLoss` for each domain
``phi`` in {I, BI, CI, BCI} (batch size B > 1) and each smoothing ``smooth_nr = smooth_dr = epsilon``: negligible
(``1e-7``, the paper's I) or the heuristic ``E[sum_{phi} y]`` (the paper's I_epsilon), the expected label volume over
one element of the domain: :py:func:`monai_dml.utils.estimate_epsilon` per image and class, times B for the domains
that pool the batch (BI, BCI) and summed over the classes by the loss for the domains that pool the classes (CI, BCI).
Labels are hard, so the DML variant equals the soft Dice loss of the paper.

The paper's claims, Sect. 2.2-2.3 and Table 1: with a domain element that can be entirely unlabelled (I, or BI with
B = 1) and a negligible epsilon, the loss ignores the missing labels and the network still segments type-B
structure 2 at test time (DSC close to full labelling); with a domain element that always holds a label (BI with
B > 1; here also CI and BCI, whose element holds structure 1) or with the heuristic epsilon, the network learns to
output empty maps for type B (DSC and volume of type-B structure 2 fall far below full labelling).

Tilborghs, S. et. al. (2022) The Dice loss in the context of missing or empty labels: introducing Phi and
epsilon. MICCAI 2022.

Run ``python -m monai_dml.experiments tilborghs [--quick]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import UNet
from monai.utils import set_determinism
from scipy import ndimage

from monai_dml.experiments.common import one_thread, stopwatch, write_results
from monai_dml.losses import DiceDomain, DMLoss
from monai_dml.metrics import compute_soft_dice, compute_volume_bias
from monai_dml.utils import estimate_epsilon, look_up_option

__all__ = [
    "DOMAINS",
    "GROUPS",
    "LEAF",
    "TilborghsConfig",
    "domain_epsilon",
    "evaluate",
    "make_two_structure_set",
    "markdown_table",
    "partial_labels",
    "run",
    "train",
]

#: The four domains of Tilborghs et al., Fig. 1.
DOMAINS: tuple[str, ...] = ("I", "BI", "CI", "BCI")
#: The evaluation groups: structure 1 (labelled in every training case), structure 2 in type-A cases (always
#: labelled; the paper's HGG / MYO_ED) and structure 2 in type-B cases (empty under partial labelling; LGG / MYO_ES).
GROUPS: tuple[str, ...] = ("s1", "s2_A", "s2_B")
SMALL_EPSILON = 1e-7
#: The row name of the leaf Dice loss (``DMLoss(phi="I", class_average="present")``): a map without labels is left
#: out of the loss altogether (Fidon et al. 2021), the reference for "ignores missing labels".
LEAF = "I-leaf"


@dataclass
class TilborghsConfig:
    """The settings of one run of the experiment (one image dimensionality)."""

    spatial_dims: int = 2
    size: int = 48
    num_train: int = 120
    num_val: int = 60
    type_b_fraction: float = 0.3
    texture: float = 0.5
    batch_size: int = 4
    iterations: int = 400
    learning_rate: float = 1e-2
    channels: tuple[int, ...] = (8, 16, 32)
    domains: tuple[str, ...] = DOMAINS
    epsilons: tuple[str, ...] = ("small", "heuristic")
    labellings: tuple[str, ...] = ("full", "partial")
    leaf: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _ellipse(shape: Sequence[int], rng: np.random.Generator, center: np.ndarray, radii: np.ndarray) -> np.ndarray:
    grid = np.indices(tuple(shape), dtype=np.float32)
    rotation = np.linalg.qr(rng.standard_normal((len(shape), len(shape))))[0]
    offsets = np.tensordot(rotation, grid - center.reshape((-1,) + (1,) * len(shape)), axes=1)
    return np.asarray(sum((o / r) ** 2 for o, r in zip(offsets, radii, strict=True)) < 1.0)


def make_two_structure_set(
    num_cases: int,
    size: int = 48,
    spatial_dims: int = 2,
    type_b_fraction: float = 0.3,
    texture: float = 0.5,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """
    Generate ``num_cases`` images with two non-overlapping ellipses and their full labels.

    Structure 1 is bright (+1), structure 2 dark (-1), on a smooth random background (standard deviation 0.25) with
    white noise (0.1). In type-B cases structure 2 is overlaid with a +-``texture`` checkerboard (a texture a 3x3
    convolution sees, with the same mean intensity).

    Args:
        num_cases: number of cases, at least 1.
        size: image side in pixels/voxels, at least 16.
        spatial_dims: 2 or 3.
        type_b_fraction: fraction of type-B cases, in [0, 1] (rounded to a whole number of cases).
        texture: amplitude of the type-B checkerboard, no less than 0. Defaults to 0.5.
        seed: the random seed; the same seed gives the same set.

    Returns:
        ``{"image": (N, 1, *spatial), "label": (N, 2, *spatial), "type_b": (N,) bool}`` (float32 image and label).

    Raises:
        ValueError: for an out-of-range argument.
    """
    if num_cases < 1:
        raise ValueError(f"num_cases must be at least 1, got {num_cases}.")
    if size < 16:
        raise ValueError(f"size must be at least 16, got {size}.")
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    if not texture >= 0.0:
        raise ValueError(f"texture must be no less than 0, got {texture}.")
    if not 0.0 <= type_b_fraction <= 1.0:
        raise ValueError(f"type_b_fraction must be in [0, 1], got {type_b_fraction}.")
    rng = np.random.default_rng(seed)
    shape = (size,) * spatial_dims
    n_b = int(round(type_b_fraction * num_cases))
    type_b = rng.permutation(np.arange(num_cases) < n_b)
    checker = (np.indices(shape).sum(axis=0) % 2 * 2 - 1).astype(np.float32)
    images = np.empty((num_cases, 1, *shape), dtype=np.float32)
    labels = np.empty((num_cases, 2, *shape), dtype=np.float32)
    for n in range(num_cases):
        while True:
            radii = [rng.uniform(0.12, 0.2, spatial_dims) * size, rng.uniform(0.1, 0.17, spatial_dims) * size]
            centers = [rng.uniform(r.max() + 1, size - r.max() - 1, spatial_dims) for r in radii]
            if np.linalg.norm(centers[0] - centers[1]) > radii[0].max() + radii[1].max() + 1:
                break
        s1, s2 = (_ellipse(shape, rng, c, r) for c, r in zip(centers, radii, strict=True))
        background = ndimage.gaussian_filter(rng.standard_normal(shape), 3.0)
        image = 0.25 * background / background.std() + 0.1 * rng.standard_normal(shape)
        image = image + s1 - s2 + (texture * checker * s2 if type_b[n] else 0.0)
        images[n, 0], labels[n, 0], labels[n, 1] = image, s1, s2
    return {"image": torch.from_numpy(images), "label": torch.from_numpy(labels), "type_b": torch.from_numpy(type_b)}


def partial_labels(label: torch.Tensor, type_b: torch.Tensor) -> torch.Tensor:
    """
    The partially labelled training targets: structure 2 (channel 1) replaced by an empty map in type-B cases.

    Args:
        label: full labels ``(N, 2, spatial...)``.
        type_b: ``(N,)`` bool, which cases lose their structure-2 label.

    Returns:
        a new tensor like ``label``.
    """
    if label.ndim < 3 or label.shape[1] != 2 or type_b.shape != label.shape[:1]:
        raise ValueError(
            f"label must be (N, 2, spatial...) with type_b (N,), got {tuple(label.shape)}, {tuple(type_b.shape)}."
        )
    out = label.clone()
    out[type_b, 1] = 0.0
    return out


def domain_epsilon(labels: torch.Tensor, phi: DiceDomain | str, batch_size: int) -> torch.Tensor:
    """
    The heuristic of Tilborghs et al., Sect. 2.3, for a domain: ``epsilon = E[sum_{phi} y]``, the expected label
    volume of one domain element, as the per-class vector that :py:class:`monai_dml.losses.DMLoss` takes.

    This is :py:func:`monai_dml.utils.estimate_epsilon` with the domain: the mean volume per image and class for
    ``"I"``; a ``"BI"``/``"BCI"`` element holds ``batch_size`` images, so B times that; for ``"CI"``/``"BCI"`` the
    loss itself sums the per-class smoothing over the classes it pools.

    Args:
        labels: the training labels as the loss sees them ``(N, C, spatial...)`` (partial labels under partial
            labelling, as the paper computes epsilon on the partially labelled set).
        phi: the domain {``"I"``, ``"BI"``, ``"CI"``, ``"BCI"``}.
        batch_size: the training batch size B.

    Returns:
        float32 ``(C,)``.
    """
    phi = look_up_option(phi, DiceDomain, "phi")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    return estimate_epsilon(labels, phi=phi.value, batch_size=batch_size).float()


def _network(config: TilborghsConfig) -> torch.nn.Module:
    return UNet(
        spatial_dims=config.spatial_dims,
        in_channels=1,
        out_channels=2,
        channels=config.channels,
        strides=(2,) * (len(config.channels) - 1),
        num_res_units=0,
    )


def train(
    config: TilborghsConfig, image: torch.Tensor, target: torch.Tensor, loss: DMLoss, seed: int = 0
) -> torch.nn.Module:
    """
    Train a fresh network on ``(image, target)`` for ``config.iterations`` steps of Adam with batches of
    ``config.batch_size`` cases drawn without replacement per epoch; the same ``seed`` gives the same initial
    weights and batch order whatever the loss, so runs differ only by the loss.

    Args:
        config: the experiment settings.
        image: ``(N, 1, spatial...)``.
        target: ``(N, 2, spatial...)`` training labels.
        loss: the loss, applied to the network's logits (``sigmoid=True``).
        seed: the seed for the weights and the batch order.

    Returns:
        the trained network in eval mode.
    """
    torch.manual_seed(seed)
    net = _network(config)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    net.train()
    for _ in range(config.iterations):
        if order.numel() < config.batch_size:
            order = torch.cat([order, torch.randperm(image.shape[0], generator=generator)])
        batch, order = order[: config.batch_size], order[config.batch_size :]
        optimizer.zero_grad(set_to_none=True)
        value = loss(net(image[batch]), target[batch])
        value.backward()
        optimizer.step()
    return net.eval()


@torch.no_grad()
def evaluate(net: torch.nn.Module, val: dict[str, torch.Tensor]) -> dict[str, float]:
    """
    DSC and volume difference of the thresholded (p > 0.5) prediction against the full validation labels, per group.

    DSC is :py:func:`monai_dml.metrics.compute_soft_dice` of the binary maps (the usual Dice score), the volume
    difference :py:func:`monai_dml.metrics.compute_volume_bias` in hard mode, in voxels (``dv``) and relative to the
    label volume (``dv_rel``). ``empty_B`` is the fraction of type-B cases whose predicted structure 2 is below a
    tenth of its label volume (a learnt empty map).

    Returns:
        ``{"dsc_<group>", "dv_<group>", "dv_rel_<group>"}`` for each of :data:`GROUPS`, and ``"empty_B"``.
    """
    probs = torch.cat([torch.sigmoid(net(x)) for x in val["image"].split(16)])
    hard = (probs > 0.5).float()
    label = val["label"]
    dsc = compute_soft_dice(hard, label)
    dv = compute_volume_bias(hard, label, mode="hard", relative=False)
    dv_rel = compute_volume_bias(hard, label, mode="hard", relative=True)
    type_b = val["type_b"]
    groups = {"s1": (torch.ones_like(type_b), 0), "s2_A": (~type_b, 1), "s2_B": (type_b, 1)}
    out: dict[str, float] = {}
    for name, (rows, channel) in groups.items():
        out[f"dsc_{name}"] = float(dsc[rows, channel].mean())
        out[f"dv_{name}"] = float(dv[rows, channel].mean())
        out[f"dv_rel_{name}"] = float(dv_rel[rows, channel].mean())
    out["empty_B"] = float((dv_rel[type_b, 1] < -0.9).float().mean())
    return out


def _set_seeds(seed: int) -> None:
    set_determinism(seed=seed, use_deterministic_algorithms=True)


def run_setting(config: TilborghsConfig, seed: int = 0) -> list[dict[str, Any]]:
    """
    Train and evaluate every (labelling, domain, epsilon) combination of ``config``; one table row each. Runs on
    one CPU thread (as fast for these tiny networks, and the sums keep one order) with deterministic algorithms,
    restoring the thread count and the deterministic-algorithms flag after.
    """
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        with one_thread():
            return _run_setting(config, seed)
    finally:
        torch.use_deterministic_algorithms(deterministic)


def _run_setting(config: TilborghsConfig, seed: int) -> list[dict[str, Any]]:
    _set_seeds(seed)
    train_set, val_set = (
        make_two_structure_set(n, config.size, config.spatial_dims, config.type_b_fraction, config.texture, s)
        for n, s in ((config.num_train, seed), (config.num_val, seed + 10_000))
    )
    rows = []
    for labelling in config.labellings:
        labelling = look_up_option(labelling, ("full", "partial"), "labelling")
        target = train_set["label"]
        if labelling == "partial":
            target = partial_labels(target, train_set["type_b"])
        combinations = [(phi, eps_name) for phi in config.domains for eps_name in config.epsilons]
        if config.leaf and labelling == "partial":
            combinations.append((LEAF, "small"))
        for phi, eps_name in combinations:
            eps_name = look_up_option(eps_name, ("small", "heuristic"), "epsilon")
            if eps_name == "small":
                eps = torch.full((2,), SMALL_EPSILON)
            else:
                eps = domain_epsilon(target, phi, config.batch_size)
            if phi == LEAF:  # the leaf Dice loss of Fidon et al.: DL_I averaged over the labelled maps only
                loss = DMLoss(sigmoid=True, phi="I", smooth_nr=eps, smooth_dr=eps, class_average="present")
            else:
                loss = DMLoss(sigmoid=True, phi=phi, smooth_nr=eps, smooth_dr=eps)
            net = train(config, train_set["image"], target, loss, seed=seed)
            row = {
                "dims": f"{config.spatial_dims}D",
                "labelling": labelling,
                "phi": phi,
                "epsilon": eps_name,
                "epsilon_value": [float(f"{float(e):.4g}") for e in eps],
                "B": config.batch_size,
            }
            row.update({k: round(v, 3) for k, v in evaluate(net, val_set).items()})
            rows.append(row)
    return rows


def _configs(quick: bool) -> list[TilborghsConfig]:
    if quick:
        return [
            TilborghsConfig(
                size=32, num_train=60, num_val=40, iterations=200, domains=("I", "BI"), labellings=("partial",)
            )
        ]
    full_2d = TilborghsConfig(size=48, num_train=120, num_val=60, iterations=400, leaf=True)
    # the paper's batch-size sweep of BI (B in {1, 2, 4, 8}): B = 1 is DL_I, so it should ignore missing labels too
    sweep = [
        TilborghsConfig(
            size=48,
            num_train=120,
            num_val=60,
            iterations=400,
            batch_size=b,
            domains=("BI",),
            epsilons=("small",),
            labellings=("partial",),
        )
        for b in (1, 2, 8)
    ]
    full_3d = TilborghsConfig(
        spatial_dims=3, size=24, num_train=60, num_val=30, iterations=300, channels=(4, 8, 16), leaf=True
    )
    return [full_2d, *sweep, full_3d]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """
    The rows of :py:func:`run` as the Markdown table of ``docs/results.md``: DSC and volume difference (in % of the
    label volume) of structure 1, structure 2 in type-A and in type-B cases, and the share of type-B cases predicted
    empty.
    """
    header = (
        "| dims | labelling | Φ | B | ε | DSC s1 | DSC s2 A | DSC s2 B | ΔV% s1 | ΔV% s2 A | ΔV% s2 B | empty B |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        eps = "1e-7" if r["epsilon"] == "small" else "E[Σy]=" + "/".join(f"{e:.0f}" for e in r["epsilon_value"])
        dsc = " | ".join(f"{r[f'dsc_{g}']:.2f}" for g in GROUPS)
        dv = " | ".join(f"{100 * r[f'dv_rel_{g}']:+.0f}" for g in GROUPS)
        lines.append(
            f"| {r['dims']} | {r['labelling']} | {r['phi']} | {r['B']} | {eps} | {dsc} | {dv} | {r['empty_B']:.2f} |"
        )
    return header + "\n".join(lines) + "\n"


def _figure(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = sorted({r["dims"] for r in rows})
    fig, axes = plt.subplots(len(settings), 2, figsize=(15, 3.6 * len(settings)), squeeze=False)
    for ax_row, dims in zip(axes, settings, strict=True):
        sub = [r for r in rows if r["dims"] == dims]
        configs = list(dict.fromkeys((r["phi"], r["epsilon"], r["B"]) for r in sub))
        labellings = list(dict.fromkeys(r["labelling"] for r in sub))
        x = np.arange(len(configs))
        width = 0.8 / (2 * len(labellings))
        for metric, ax, ylabel in (("dsc", ax_row[0], "DSC"), ("dv_rel", ax_row[1], "ΔV / V")):
            k = 0
            for labelling in labellings:
                for group, hatch in (("s2_A", ""), ("s2_B", "//")):
                    values = []
                    for phi, eps, b in configs:
                        key = (phi, eps, b, labelling)
                        match = [r for r in sub if (r["phi"], r["epsilon"], r["B"], r["labelling"]) == key]
                        values.append(match[0][f"{metric}_{group}"] if match else math.nan)
                    color = "tab:blue" if labelling == "full" else "tab:orange"
                    ax.bar(
                        x + (k - len(labellings) + 0.5) * width,
                        values,
                        width,
                        color=color,
                        hatch=hatch,
                        edgecolor="black",
                        linewidth=0.4,
                        label=f"{labelling}, {group.replace('_', ' ')}",
                    )
                    k += 1
            ax.set_xticks(x, [f"{phi} B={b}\nε {eps}" for phi, eps, b in configs], fontsize=7, rotation=35)
            ax.set_ylabel(ylabel)
            ax.axhline(0.0, color="black", linewidth=0.5)
            ax.set_title(f"{dims}: structure 2, {ylabel}", fontsize=9)
        ax_row[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(quick: bool = False, output_dir: str | Path = "results", seed: int = 0) -> dict[str, Any]:
    """
    Run the experiment and write ``<output_dir>/tilborghs.json`` and ``tilborghs.png``.

    Args:
        quick: the small configuration (2D, 32 px, partial labelling only, domains I and BI with both epsilons;
            under a minute on a 2-core CPU) instead of 2D (48 px) and 3D (24^3), full and partial labelling, all
            four domains with both epsilons, and BI with B in {1, 2, 8} (2D, partial, small epsilon).
        output_dir: folder for the results.
        seed: the seed of the data, the weights and the batch order.

    Returns:
        ``{"config": [...], "table": [row, ...], "runtime_s": float}``; each row holds the setting (``dims``,
        ``labelling``, ``phi``, ``epsilon``, ``B``) and the metrics of :py:func:`evaluate`.
    """
    configs = _configs(quick)
    results: dict[str, Any] = {"config": [asdict(c) | {"quick": quick, "seed": seed} for c in configs]}
    rows: list[dict[str, Any]] = []
    with stopwatch(results):
        for config in configs:
            rows.extend(run_setting(config, seed=seed))
    results["table"] = rows
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _figure(rows, out / "tilborghs.png")
    write_results(results, out, "tilborghs")
    return results
