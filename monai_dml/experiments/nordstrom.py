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
Nordström et al. (2023), experiment (S): free logits optimised by gradient descent on blurred, deformed balls.

For each blur level ``rho`` a soft label ``m`` is generated (a ball of radius 0.2 on a 200 x 200 grid of the unit
square, blurred by a Gaussian of standard deviation ``rho``, deformed by a smooth random displacement field). Free
logits ``F_1 ~ N(0, 1)`` are then updated by plain gradient descent ``F_{l+1} = F_l - gamma grad L(sigmoid(F_l), m)``
for the soft Dice loss (SDL) and the Dice semimetric losses DML1 and DML2, all three from
:py:class:`monai_dml.losses.DMLoss`. Reported, as the paper's Table 1, at iterations ``l = 1, 10, 20, 100, 200``:

- ``e0 = ||sigmoid(F_l) - s||_1`` and ``e1 = ||1[sigmoid(F_l) >= 1/2] - s||_1`` (normalised measure: voxel means) to
  the Theorem 1 optimum ``s = 1[m >= sup_s' D_m(s') / 2]``;
- ``d = ||sigmoid(F_l) - m||_1``, the distance to the soft label itself (DML's minimiser);

and, for Theorem 2, the volume ``||sigmoid(F_200)||_1`` of the SDL solution against the bounds ``[||m||_1^2, 1]``.

Nordström, M. et. al. (2023) Noisy Image Segmentation With Soft-Dice. arXiv:2304.00801.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from monai_dml.experiments.common import one_thread, stopwatch, write_results
from monai_dml.losses import DMLoss
from monai_dml.metrics import compute_soft_dice, compute_volume_bias

__all__ = [
    "ITERATIONS",
    "RHOS",
    "RUNS",
    "dice_optimum",
    "optimal_volume_range",
    "optimise_logits",
    "run",
    "sharp_volume_example",
    "synthetic_soft_label",
]

RHOS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09)
ITERATIONS = (1, 10, 20, 100, 200)
# (loss variant, step size gamma / N): gamma = 10 N is the paper's; DML also at gamma = N, see docs/results.md
RUNS = (("sdl", 10.0), ("dml1", 10.0), ("dml2", 10.0), ("dml1", 1.0), ("dml2", 1.0))


def synthetic_soft_label(
    rho: float,
    rng: np.random.Generator,
    size: int = 200,
    radius: float = 0.2,
    deform: float = 0.03,
    deform_smooth: float = 0.1,
) -> np.ndarray:
    """
    One soft label of experiment (S): a centred ball, Gaussian blur, a smooth random deformation.

    Lengths are in units of the image side (the unit square of the paper).

    Args:
        rho: standard deviation of the Gaussian blur (the paper's variance ``rho^2``).
        rng: the random generator of the deformation.
        size: pixels per side. Defaults to 200.
        radius: radius of the ball. Defaults to 0.2.
        deform: standard deviation of each component of the displacement field. Defaults to 0.03.
        deform_smooth: correlation length (Gaussian sigma) of the displacement field. Defaults to 0.1.

    Returns:
        float64 array ``(size, size)`` with values in [0, 1].

    Raises:
        ValueError: when ``rho`` or ``deform`` is negative, or ``size``, ``radius`` or ``deform_smooth`` is not
            positive.
    """
    if rho < 0 or deform < 0:
        raise ValueError(f"rho and deform must be no less than 0, got rho={rho}, deform={deform}.")
    if size < 1 or radius <= 0 or deform_smooth <= 0:
        raise ValueError(
            f"size, radius and deform_smooth must be positive, got size={size}, radius={radius}, "
            f"deform_smooth={deform_smooth}."
        )
    centres = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(centres, centres, indexing="ij")
    ball = ((yy - 0.5) ** 2 + (xx - 0.5) ** 2 <= radius**2).astype(np.float64)
    blurred = ndimage.gaussian_filter(ball, rho * size, mode="constant") if rho > 0 else ball
    grid = np.indices((size, size), dtype=np.float64)
    displacement = []
    for _ in range(2):
        field = ndimage.gaussian_filter(rng.standard_normal((size, size)), deform_smooth * size, mode="wrap")
        displacement.append(field / max(float(field.std()), 1e-12) * deform * size)
    warped = ndimage.map_coordinates(blurred, grid + np.stack(displacement), order=1, mode="constant")
    return np.asarray(np.clip(warped, 0.0, 1.0))


def dice_optimum(m: np.ndarray) -> tuple[np.ndarray, float]:
    """
    The Theorem 1 optimum of a soft label ``m``: ``s = 1[m >= D*/2]`` with ``D* = sup_s D_m(s)``.

    ``D*`` is found without the theorem: among the segmentations of ``k`` voxels the Dice
    ``D_m(s) = 2 <s, m> / (|s| + |m|)`` is largest for the ``k`` voxels of largest ``m``, so sorting ``m`` in
    decreasing order and maximising ``2 cumsum(m)_k / (sum(m) + k)`` over ``k`` gives ``D*`` (the paper's eq. 78).

    Args:
        m: soft label, any shape, values in [0, 1], not all zero.

    Returns:
        ``(s, D*)``: the float64 0/1 array ``s`` of ``m``'s shape and the supremum of the Dice.

    Raises:
        ValueError: when ``m`` is outside [0, 1], not finite, or all zero.
    """
    m = np.asarray(m, dtype=np.float64)
    if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
        raise ValueError("m must be a finite soft label with values in [0, 1].")
    total = float(m.sum())
    if total <= 0:
        raise ValueError("m must not be all zero (every segmentation is then optimal).")
    ordered = np.sort(m.ravel())[::-1]
    dice = 2.0 * np.cumsum(ordered) / (total + np.arange(1, ordered.size + 1))
    best = float(dice.max())
    return (m >= best / 2).astype(np.float64), best


def optimal_volume_range(m: np.ndarray) -> tuple[float, float]:
    """
    The smallest and largest normalised volume of the Dice-optimal segmentations of ``m`` (Theorem 2, part 1).

    By Theorem 1 these are ``|1[m > D*/2]|`` and ``|1[m >= D*/2]|``; they differ only where ``m`` takes the value
    ``D*/2`` on a set of positive measure.

    Args:
        m: soft label, values in [0, 1], not all zero.

    Returns:
        ``(inf, sup)`` as fractions of the voxels.
    """
    s, best = dice_optimum(m)
    m = np.asarray(m, dtype=np.float64)
    return float((m > best / 2).mean()), float(s.mean())


def sharp_volume_example(v: float = 1.0 / 3.0, num_voxels: int = 900) -> np.ndarray:
    """
    A soft label of volume ``v`` whose Dice-optimal segmentations have every volume in ``[v^2, 1]`` (Theorem 2 is
    sharp at both ends): ``m = 1`` on ``v^2 N`` voxels and ``m = v / (1 + v) = D*/2`` on the others.

    Args:
        v: the volume ``||m||_1``, in (0, 1); ``v^2 N`` must be a whole number. Defaults to 1/3.
        num_voxels: ``N``. Defaults to 900.

    Returns:
        float64 array ``(num_voxels,)``.

    Raises:
        ValueError: when ``v`` is not in (0, 1) or ``v^2 num_voxels`` is not a whole number.
    """
    if not 0 < v < 1:
        raise ValueError(f"v must be in (0, 1), got {v}.")
    ones = v * v * num_voxels
    if abs(ones - round(ones)) > 1e-9:
        raise ValueError(f"v^2 * num_voxels must be a whole number, got {ones}.")
    m = np.full(num_voxels, v / (1.0 + v))
    m[: round(ones)] = 1.0
    return m


def optimise_logits(
    m: torch.Tensor,
    f1: torch.Tensor,
    variant: str,
    step: float,
    num_iterations: int = 200,
    record: tuple[int, ...] = ITERATIONS,
    s: torch.Tensor | None = None,
) -> tuple[dict[int, torch.Tensor], torch.Tensor | None]:
    """
    Gradient descent on free logits for one loss of :py:class:`~monai_dml.losses.DMLoss`, image by image.

    ``F_{l+1} = F_l - step * N * grad_F L(sigmoid(F_l), m)`` with ``N`` the voxels per image; the losses of the
    images are summed, so each image follows its own descent. ``F_1 = f1`` (iteration ``l`` has had ``l - 1``
    updates).

    Args:
        m: soft labels ``(B, 1, H, W)``.
        f1: initial logits, same shape.
        variant: {``"sdl"``, ``"dml1"``, ``"dml2"``}.
        step: the step size divided by ``N``.
        num_iterations: the last iteration ``l``. Defaults to 200.
        record: the iterations whose ``sigmoid(F_l)`` is returned.
        s: the Theorem 1 optimum ``(B, 1, H, W)``; when given, ``e0``, ``e1`` and ``d`` of every image at every
            iteration are returned too.

    Returns:
        ``(predictions, errors)``: ``{l: sigmoid(F_l)}`` for ``l`` in ``record``, and a float64 tensor
        ``(num_iterations, 3, B)`` of ``e0``, ``e1``, ``d`` per iteration ``1..num_iterations`` and image (None
        without ``s``).

    Raises:
        ValueError: when ``m`` and ``f1`` (or ``s``) differ in shape, or ``step`` is not positive.
    """
    if m.shape != f1.shape or (s is not None and s.shape != m.shape):
        raise ValueError(f"m, f1 and s must have the same shape, got {tuple(m.shape)} and {tuple(f1.shape)}.")
    if not step > 0:
        raise ValueError(f"step must be positive, got {step}.")
    loss = DMLoss(variant=variant, sigmoid=True, reduction="sum", smooth_nr=0.0, smooth_dr=0.0)
    gamma = step * float(np.prod(m.shape[2:]))
    dims = tuple(range(1, m.ndim))
    logits = f1.detach().clone().requires_grad_(True)
    predictions: dict[int, torch.Tensor] = {}
    errors = None if s is None else torch.zeros(num_iterations, 3, m.shape[0], dtype=torch.float64)
    for iteration in range(1, num_iterations + 1):
        with torch.no_grad():
            c = torch.sigmoid(logits)
            if iteration in record:
                predictions[iteration] = c.clone()
            if errors is not None and s is not None:
                errors[iteration - 1, 0] = (c - s).abs().mean(dim=dims, dtype=torch.float64)
                errors[iteration - 1, 1] = ((c >= 0.5).to(c) - s).abs().mean(dim=dims, dtype=torch.float64)
                errors[iteration - 1, 2] = (c - m).abs().mean(dim=dims, dtype=torch.float64)
        if iteration == num_iterations:
            break
        (grad,) = torch.autograd.grad(loss(logits, m), logits)
        with torch.no_grad():
            logits -= gamma * grad
    return predictions, errors


def _run_name(variant: str, step: float) -> str:
    return f"{variant}@{step:g}N"


def _plot(
    path: Path, examples: dict[float, dict[str, np.ndarray]], curves: dict[str, dict[str, dict[str, list[float]]]]
) -> None:
    """Rows: blur levels; columns: ``m``, SDL's iterates, the Theorem 1 optimum, DML1's iterate, the error curves."""
    from monai_dml.visualize.figures import _pyplot, _save

    plt = _pyplot()
    columns = ["m", "sdl@10N l=10", "sdl@10N l=20", "sdl@10N l=200", "Theorem 1 s", "dml1@1N l=200"]
    fig, axes = plt.subplots(len(examples), len(columns) + 1, figsize=(2.0 * len(columns) + 3.0, 2.0 * len(examples)))
    axes = np.atleast_2d(axes)
    for row, (rho, images) in enumerate(examples.items()):
        for col, key in enumerate(columns):
            ax = axes[row, col]
            ax.imshow(images[key], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(key, fontsize=8)
            if col == 0:
                ax.set_ylabel(f"rho = {rho:g}", fontsize=8)
        ax = axes[row, -1]
        for name, per_rho in curves.items():
            for key, style in (("e1", "-"), ("d", ":")):
                if key == "e1" and not name.startswith("sdl"):
                    continue
                curve = np.maximum(np.asarray(per_rho[f"{rho:g}"][key]), 1e-5)
                ax.semilogy(np.arange(1, curve.size + 1), curve, style, label=f"{name} {key}", lw=1)
        ax.set_ylim(1e-4, 1)
        ax.tick_params(labelsize=6)
        if row == 0:
            ax.set_title("e1 (SDL), d = |c - m| vs l", fontsize=8)
            ax.legend(fontsize=5)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _soft_dice(c: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``1 - SDL = 2 <c, m> / (|c| + |m|)`` per image, from the package's loss."""
    sdl = DMLoss(variant="sdl", reduction="none", smooth_nr=0.0, smooth_dr=0.0)
    return 1.0 - sdl(c, m).flatten()


def run(quick: bool = False, output_dir: str | Path = "results", seed: int = 0) -> dict[str, Any]:
    """
    Run experiment (S) and write ``<output_dir>/nordstrom.json`` and ``<output_dir>/nordstrom.png``.

    Every soft label of every blur level is optimised in one batch, on one CPU thread (small tensors: more threads
    only add synchronisation, and one thread keeps the sums, hence the table, identical from run to run).

    Args:
        quick: three blur levels (0.01, 0.05, 0.09) with one soft label each, and only the runs ``sdl@10N``,
            ``dml1@1N`` and ``dml2@1N``, instead of nine levels with 10 labels each and all of :data:`RUNS`.
        output_dir: folder of the results.
        seed: seed of the soft labels (``numpy``, per blur level and sample) and of the initial logits (``torch``;
            the same ``F_1`` for every loss).

    Returns:
        The results: ``config``, ``table`` (one row per blur level and run with the means of ``e0``, ``e1``, ``d``
        at :data:`ITERATIONS`), ``volumes`` (one row per blur level: Theorems 1 and 2), ``theorem2_sharpness``,
        ``curves`` (mean ``e0``, ``e1``, ``d`` per run, blur level and iteration) and ``runtime_s``.
    """
    rhos = (0.01, 0.05, 0.09) if quick else RHOS
    samples = 1 if quick else 10
    runs = tuple(r for r in RUNS if not quick or r[0] == "sdl" or r[1] == 1.0)
    config = {
        "quick": quick,
        "seed": seed,
        "rhos": list(rhos),
        "samples_per_rho": samples,
        "size": 200,
        "radius": 0.2,
        "deform": 0.03,
        "deform_smooth": 0.1,
        "iterations": list(ITERATIONS),
        "runs": [_run_name(v, st) for v, st in runs],
        "smooth_nr": 0.0,
        "smooth_dr": 0.0,
        "torch_threads": 1,
    }
    results: dict[str, Any] = {"config": config}
    with one_thread(), stopwatch(results):
        _experiment(results, rhos, samples, runs, seed)
    examples = results.pop("_examples")
    out = Path(output_dir)
    write_results(results, out, "nordstrom")
    _plot(out / "nordstrom.png", examples, results["curves"])
    return results


def _experiment(
    results: dict[str, Any], rhos: tuple[float, ...], samples: int, runs: tuple[tuple[str, float], ...], seed: int
) -> None:
    labels = [
        synthetic_soft_label(rho, np.random.default_rng(np.random.SeedSequence([seed, r_index, k])))
        for r_index, rho in enumerate(rhos)
        for k in range(samples)
    ]
    optima = [dice_optimum(m) for m in labels]
    m = torch.as_tensor(np.stack(labels), dtype=torch.float32)[:, None]
    s = torch.as_tensor(np.stack([o[0] for o in optima]), dtype=torch.float32)[:, None]
    sup_dice = torch.as_tensor([o[1] for o in optima], dtype=torch.float64)
    f1 = torch.randn(m.shape, generator=torch.Generator().manual_seed(seed))
    groups = [slice(i * samples, (i + 1) * samples) for i in range(len(rhos))]
    table: list[dict[str, Any]] = []
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    final: dict[str, torch.Tensor] = {}
    recorded: dict[int, torch.Tensor] = {}
    for variant, step in runs:
        name = _run_name(variant, step)
        predictions, errors = optimise_logits(m, f1, variant, step, s=s)
        assert errors is not None
        final[name] = predictions[ITERATIONS[-1]]
        if name == "sdl@10N":
            recorded = predictions
        curves[name] = {}
        for rho, group in zip(rhos, groups, strict=True):
            mean = errors[:, :, group].mean(dim=2)
            curves[name][f"{rho:g}"] = {
                k: [round(float(v), 6) for v in mean[:, j]] for j, k in enumerate(("e0", "e1", "d"))
            }
            row: dict[str, Any] = {"rho": rho, "loss": variant, "step": f"{step:g}N", "samples": samples}
            for it in ITERATIONS:
                for j, key in enumerate(("e0", "e1", "d")):
                    row[f"{key}_{it}"] = float(mean[it - 1, j])
            table.append(row)
    dims = (1, 2, 3)
    volume_m = m.double().mean(dim=dims)
    volume_s = s.double().mean(dim=dims)
    volume_half = (m >= 0.5).double().mean(dim=dims)
    sdl = final["sdl@10N"]
    volume_sdl = sdl.double().mean(dim=dims)
    dml = final["dml1@1N"]
    dice_s = compute_soft_dice(s, m).flatten().double()
    soft_dice_sdl = _soft_dice(sdl, m).double()
    bias_sdl = compute_volume_bias(sdl, m).flatten().double()
    bias_dml = compute_volume_bias(dml, m).flatten().double()
    volumes = []
    for rho, g in zip(rhos, groups, strict=True):
        volumes.append(
            {
                "rho": rho,
                "volume_m": float(volume_m[g].mean()),
                "bound_low": float((volume_m[g] ** 2).mean()),
                "volume_half": float(volume_half[g].mean()),
                "volume_optimum": float(volume_s[g].mean()),
                "volume_sdl": float(volume_sdl[g].mean()),
                "volume_dml1": float(dml[g].double().mean()),
                "bias_sdl": float(bias_sdl[g].mean()),
                "bias_dml1": float(bias_dml[g].mean()),
                "sdl_within_bounds": float(
                    ((volume_sdl[g] >= volume_m[g] ** 2) & (volume_sdl[g] <= 1)).double().mean()
                ),
                "optimum_above_half": float((volume_s[g] >= volume_half[g]).double().mean()),
                "sup_dice": float(sup_dice[g].mean()),
                "dice_of_optimum": float(dice_s[g].mean()),
                "soft_dice_sdl": float(soft_dice_sdl[g].mean()),
                "max_soft_dice_gain": float((soft_dice_sdl[g] - sup_dice[g]).max()),
            }
        )
    sharp = sharp_volume_example()
    low, high = optimal_volume_range(sharp)
    results["theorem2_sharpness"] = {
        "volume_m": float(sharp.mean()),
        "bound_low": float(sharp.mean() ** 2),
        "optimal_volume_inf": low,
        "optimal_volume_sup": high,
    }
    results["table"] = table
    results["volumes"] = volumes
    results["curves"] = curves
    results["_examples"] = {
        rho: {
            "m": labels[g.start],
            **{f"sdl@10N l={it}": recorded[it][g.start, 0].numpy() for it in (10, 20, 200)},
            "Theorem 1 s": optima[g.start][0],
            "dml1@1N l=200": dml[g.start, 0].numpy(),
        }
        for rho, g in zip(rhos, groups, strict=True)
    }
