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
Synthetic data sets in the real QUBIQ, LiTS and KiTS folder layouts, with raters who disagree the way real raters do.

Run ``python -m monai_dml.data.synthetic --layout qubiq --out /tmp/q`` and list the cases with
``monai_dml.data.qubiq_datalist("/tmp/q")``. Each case has a smooth random ground-truth shape (in the spirit of the
synthetic set of Nordström et al.: a ball, Gaussian blur, a random smooth deformation); each rater draws it with a
persistent boundary bias, a smooth random deformation, blur-and-threshold at a rater-specific level and, now and then,
a missed small component. The disagreement of every QUBIQ sub-data set is calibrated so that the mean Dice of a rater
against the majority vote matches Table 1 of Wang et al. (2023).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import torch
from monai.utils import StrEnum
from scipy import ndimage, special

from monai_dml.data.qubiq import QUBIQ_DATASETS, QUBIQ_TABLE1
from monai_dml.transforms import RaterFusion
from monai_dml.utils import look_up_option

__all__ = [
    "CT_SPACING_FOV_MM",
    "QUBIQ_NOISE",
    "QUBIQ_SUB_DATASETS",
    "Layout",
    "QubiqSubDataset",
    "RaterNoise",
    "generate_dataset",
    "generate_kits",
    "generate_lits",
    "generate_qubiq",
    "main",
    "perturb_mask",
    "synthesize_qubiq_case",
    "write_ct_volume",
]

# field of view (in-plane, axial) in millimetres of the synthetic CT volumes; the spacing is FOV / voxels
CT_SPACING_FOV_MM = (384.0, 240.0)


class Layout(StrEnum):
    """
    The folder layouts :py:func:`generate_dataset` writes.

    - ``QUBIQ``: ``<dataset>/Training/caseNN/image.nii.gz`` + ``taskTT_segRR.nii.gz`` (QUBIQ 2020/2021).
    - ``LITS``: ``volume-N.nii`` + ``segmentation-N.nii`` (or MSD Task03_Liver with ``msd=True``).
    - ``KITS19``: ``case_XXXXX/imaging.nii.gz`` + ``segmentation.nii.gz``.
    - ``KITS21``: KiTS19's files plus ``instances/<structure>_instance-K_annotation-A.nii.gz``.
    """

    QUBIQ = "qubiq"
    LITS = "lits"
    KITS19 = "kits19"
    KITS21 = "kits21"


@dataclass(frozen=True)
class RaterNoise:
    """
    How the raters of one task differ from the truth. Lengths are fractions of the structure's equivalent radius
    (the radius of a ball of the same area/volume), so the disagreement does not depend on the image size.

    Args:
        shift: standard deviation of each rater's persistent boundary bias (> 0 dilates, < 0 erodes); drawn once per
            rater and kept for every case, as real raters are consistently generous or strict.
        shift_jitter: standard deviation of the per-case change of that bias.
        deform: standard deviation of the smooth random displacement field.
        deform_smooth: correlation length (Gaussian sigma) of the displacement field.
        blur: sigma of the blur before each rater's threshold.
        threshold_spread: each rater thresholds the blurred mask at a level drawn uniformly from
            ``0.5 +- threshold_spread`` (persistent per rater).
        miss: probability that a rater misses each small component (every component but the largest).
    """

    shift: float = 0.0
    shift_jitter: float = 0.0
    deform: float = 0.0
    deform_smooth: float = 0.5
    blur: float = 0.0
    threshold_spread: float = 0.0
    miss: float = 0.0

    def scaled(self, factor: float) -> RaterNoise:
        """The same noise with ``shift``, ``shift_jitter``, ``deform`` and ``threshold_spread`` times ``factor``."""
        return RaterNoise(
            shift=self.shift * factor,
            shift_jitter=self.shift_jitter * factor,
            deform=self.deform * factor,
            deform_smooth=self.deform_smooth,
            blur=self.blur,
            threshold_spread=min(self.threshold_spread * factor, 0.45),
            miss=self.miss,
        )


@dataclass(frozen=True)
class QubiqSubDataset:
    """
    One QUBIQ segmentation task ("sub-data set" D1-D7 of Wang et al. 2023, Table 1).

    Args:
        dataset: the QUBIQ folder name (``"prostate"``, ``"brain-growth"``, ``"brain-tumor"``, ``"kidney"``,
            ``"pancreas"``, ``"pancreatic-lesion"``).
        task: the task number ``TT`` of ``taskTT_segRR.nii.gz``.
        num_raters: raters per case.
        target_dice: the mean rater-vs-majority Dice (percent) of Table 1, or None where the paper gives none.
        noise: the calibrated rater disagreement.
    """

    dataset: str
    task: int
    num_raters: int
    target_dice: float | None
    noise: RaterNoise


# Calibrated once at 64 x 64 with seed 0 (bisection on one factor of shift, jitter, deformation and threshold spread
# per sub-data set, see docs/data.md) so that the mean rater-vs-majority Dice over 100 cases matches Table 1.
QUBIQ_NOISE: dict[str, RaterNoise] = {
    "D1": RaterNoise(0.044, 0.022, 0.044, 0.5, 0.05, 0.111),  # prostate task 1
    "D2": RaterNoise(0.093, 0.046, 0.093, 0.5, 0.08, 0.232),  # prostate task 2
    "D3": RaterNoise(0.089, 0.044, 0.089, 0.4, 0.08, 0.22),  # brain-growth
    "D4": RaterNoise(0.067, 0.033, 0.067, 0.5, 0.05, 0.166),  # brain-tumor task 1
    "D5": RaterNoise(0.354, 0.039, 0.158, 0.4, 0.1, 0.236, miss=0.15),  # brain-tumor task 2
    "D6": RaterNoise(0.105, 0.053, 0.105, 0.5, 0.05, 0.28),  # brain-tumor task 3
    "D7": RaterNoise(0.042, 0.02, 0.042, 0.5, 0.05, 0.084),  # kidney
}
QUBIQ_SUB_DATASETS: dict[str, QubiqSubDataset] = {
    key: QubiqSubDataset(dataset, task, raters, dice, QUBIQ_NOISE[key])
    for key, (dataset, task, raters, dice) in QUBIQ_TABLE1.items()
}
# QUBIQ 2021 (training_data_v3) adds two 3D CT sets; the paper does not use them (no target). Two raters each is a
# guess, see docs/data.md.
QUBIQ_SUB_DATASETS["pancreas"] = QubiqSubDataset("pancreas", 1, 2, None, RaterNoise(0.03, 0.015, 0.03, 0.5, 0.05, 0.05))
QUBIQ_SUB_DATASETS["pancreatic-lesion"] = QubiqSubDataset(
    "pancreatic-lesion", 1, 2, None, RaterNoise(0.08, 0.04, 0.06, 0.5, 0.08, 0.1, miss=0.2)
)

QUBIQ_2020_DATASETS = ("prostate", "brain-growth", "brain-tumor", "kidney")
QUBIQ_2021_DATASETS = QUBIQ_DATASETS
_DATASET_IDS = {name: i for i, name in enumerate(QUBIQ_2021_DATASETS)}
_KITS21_NOISE = {
    "kidney": RaterNoise(0.02, 0.01, 0.02, 0.5, 0.05, 0.03),
    "tumor": RaterNoise(0.06, 0.03, 0.05, 0.5, 0.08, 0.08),
}


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (case index, ...): adding cases changes no other."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _smooth_noise(shape: Sequence[int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian random field with unit standard deviation and correlation length ``sigma`` voxels."""
    field = ndimage.gaussian_filter(rng.standard_normal(tuple(shape)).astype(np.float32), max(sigma, 0.5))
    field -= field.mean()
    return field / max(float(field.std()), 1e-6)


def _blob(
    shape: Sequence[int],
    center: Sequence[float],
    radii: Sequence[float],
    rng: np.random.Generator,
    roughness: float = 0.1,
    angle: float = 0.0,
) -> np.ndarray:
    """A smooth random blob: an ellipsoid (rotated by ``angle`` in the first two axes) with a rough boundary."""
    grid = np.indices(tuple(shape), dtype=np.float32)
    coords = [grid[i] - c for i, c in enumerate(center)]
    cos, sin = np.cos(angle), np.sin(angle)
    coords[0], coords[1] = cos * coords[0] + sin * coords[1], -sin * coords[0] + cos * coords[1]
    radius = np.sqrt(sum((c / r) ** 2 for c, r in zip(coords, radii, strict=True)))
    noise = _smooth_noise(shape, 0.4 * float(np.mean(radii[:2])), rng) if roughness > 0 else 0.0
    return np.asarray(radius + roughness * noise < 1.0)


def _equivalent_radius(mask: np.ndarray) -> float:
    """Radius of the ball (disc in 2D) with the volume (area) of ``mask``, in voxels; at least 1."""
    n = float(mask.sum())
    if mask.ndim == 2:
        return max(np.sqrt(n / np.pi), 1.0)
    return max((3.0 * n / (4.0 * np.pi)) ** (1.0 / 3.0), 1.0)


def _normal_quantile(p: np.ndarray) -> np.ndarray:
    """Quantiles of the standard normal distribution."""
    return np.asarray(np.sqrt(2.0) * special.erfinv(2.0 * p - 1.0))


def perturb_mask(
    truth: np.ndarray,
    num_raters: int,
    noise: RaterNoise,
    rng: np.random.Generator,
    rater_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """
    Draw ``num_raters`` raters' masks of one binary ground truth, 2D or 3D.

    Each rater ``r`` draws the level set ``{x : sd(x + u_r(x)) < (b_r + j) R}`` of the truth's signed distance ``sd``
    (negative inside), with a smooth random displacement field ``u_r``, a persistent bias ``b_r`` and a per-case
    jitter ``j`` (``R`` is the equivalent radius), then blurs it and thresholds at its own level ``t_r``, and misses
    each small component of the truth with probability ``noise.miss``.

    Args:
        truth: binary mask ``(H, W)`` or ``(H, W, D)``.
        num_raters: number of raters ``R``.
        noise: the disagreement parameters.
        rng: generator for the per-case randomness (deformations, jitter, misses).
        rater_rng: generator that assigns the persistent biases and thresholds (fixed quantiles of their
            distributions) to the raters; pass one seeded per sub-data set (not per case) so that a rater keeps its
            habits across cases. None uses ``rng``.

    Returns:
        uint8 array ``(R, *truth.shape)`` of binary masks.

    Raises:
        ValueError: when ``truth`` is not 2D or 3D or ``num_raters < 1``.
    """
    if truth.ndim not in (2, 3):
        raise ValueError(f"truth must be a 2D or 3D mask, got shape {truth.shape}.")
    if num_raters < 1:
        raise ValueError(f"num_raters must be at least 1, got {num_raters}.")
    truth = truth.astype(bool)
    rater_rng = rng if rater_rng is None else rater_rng
    # persistent habits at fixed quantiles (only their order is random): the set of biases does not depend on the
    # seed, so the agreement of a sub-data set does not either
    quantiles = (np.arange(num_raters) + 0.5) / num_raters
    bias = _normal_quantile(quantiles)[rater_rng.permutation(num_raters)] * noise.shift
    levels = 0.5 + (2.0 * quantiles - 1.0)[rater_rng.permutation(num_raters)] * noise.threshold_spread
    out = np.zeros((num_raters, *truth.shape), dtype=np.uint8)
    if not truth.any():
        return out
    radius = _equivalent_radius(truth)
    signed = ndimage.distance_transform_edt(~truth) - ndimage.distance_transform_edt(truth)
    signed = signed.astype(np.float32)
    grid = np.indices(truth.shape, dtype=np.float32)
    labels, n_components = ndimage.label(truth)
    small: list[int] = []
    if n_components > 1:
        sizes = ndimage.sum_labels(truth, labels, index=np.arange(1, n_components + 1))
        small = [i + 1 for i in np.argsort(sizes)[:-1]]
    for r in range(num_raters):
        if noise.deform > 0:
            sigma = noise.deform_smooth * radius
            coords = grid + np.stack([_smooth_noise(truth.shape, sigma, rng) for _ in range(truth.ndim)]) * (
                noise.deform * radius
            )
            field = ndimage.map_coordinates(signed, coords, order=1, mode="nearest")
        else:
            field = signed
        level = (bias[r] + rng.normal(0.0, 1.0) * noise.shift_jitter) * radius
        mask = field < level
        if noise.blur > 0:
            mask = ndimage.gaussian_filter(mask.astype(np.float32), noise.blur * radius) > levels[r]
        for component in small:
            if rng.uniform() < noise.miss:
                region = ndimage.binary_dilation(labels == component, iterations=max(int(0.2 * radius), 1) + 1)
                mask &= ~region
        out[r] = mask
    return out


def synthesize_qubiq_case(
    dataset: str, index: int, size: int = 64, depth: int = 32, seed: int = 0
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """
    One synthetic QUBIQ case: the image and, per task, the raters' masks.

    Args:
        dataset: a QUBIQ folder name, one of ``QUBIQ_2021_DATASETS``.
        index: the case index (0-based); the case depends only on ``(seed, dataset, index)``.
        size: in-plane size (the 2D sets are ``size x size``). Defaults to 64.
        depth: number of slices of the 3D sets (pancreas, pancreatic-lesion). Defaults to 32.
        seed: random seed. Defaults to 0.

    Returns:
        ``(image, raters)``: ``image`` is float32 ``(H, W)``, ``(H, W, 4)`` (brain-tumor: FLAIR, T1, T1c, T2) or
        ``(H, W, D)``; ``raters[task]`` is uint8 ``(R, H, W[, D])``.

    Raises:
        ValueError: for an unknown ``dataset``.
    """
    name = look_up_option(dataset, QUBIQ_2021_DATASETS, "dataset")
    subs = [s for s in QUBIQ_SUB_DATASETS.values() if s.dataset == name]
    is_3d = name in ("pancreas", "pancreatic-lesion")
    shape: tuple[int, ...] = (size, size, depth) if is_3d else (size, size)
    rng = _rng(seed, _DATASET_IDS[name], index)
    center = [s / 2 + rng.uniform(-0.06, 0.06) * s for s in shape]
    angle = rng.uniform(0, np.pi)
    truths: dict[int, np.ndarray] = {}
    if name == "prostate":
        outer = _blob(shape, center, (0.27 * size, 0.22 * size), rng, 0.06, angle)
        inner_center = [center[0] - 0.06 * size, center[1]]
        inner = _blob(shape, inner_center, (0.14 * size, 0.11 * size), rng, 0.12, angle) & outer
        truths = {1: outer, 2: inner}
    elif name == "brain-growth":
        truths = {1: _blob(shape, center, (0.3 * size, 0.25 * size), rng, 0.15, angle)}
    elif name == "brain-tumor":
        whole = _blob(shape, center, (0.22 * size, 0.18 * size), rng, 0.15, angle)
        core = _blob(shape, center, (0.12 * size, 0.1 * size), rng, 0.15, angle) & whole
        # enhancing tumour: a small irregular region plus satellites, the hard task D5
        small = _blob(shape, center, (0.08 * size, 0.065 * size), rng, 0.2, angle)
        for direction in rng.uniform(0, 2 * np.pi) + np.array([0.0, 2.5]):  # two satellites
            offset = 0.13 * size * np.array([np.cos(direction), np.sin(direction)])
            small |= _blob(shape, [center[0] + offset[0], center[1] + offset[1]], (0.04 * size,) * 2, rng, 0.15)
        truths = {1: whole, 2: small & whole, 3: core}
    elif name == "kidney":
        truths = {1: _blob(shape, center, (0.22 * size, 0.13 * size), rng, 0.06, angle)}
    elif name == "pancreas":
        truths = {1: _blob(shape, center, (0.25 * size, 0.08 * size, 0.3 * depth), rng, 0.15, angle)}
    else:  # pancreatic-lesion
        truths = {1: _blob(shape, center, (0.08 * size, 0.07 * size, 0.15 * depth), rng, 0.2, angle)}
    raters: dict[int, np.ndarray] = {}
    for sub in subs:
        rater_rng = _rng(seed, _DATASET_IDS[name], 10_000 + sub.task)
        raters[sub.task] = perturb_mask(truths[sub.task], sub.num_raters, sub.noise, rng, rater_rng)
    image = _qubiq_image(name, truths, shape, rng)
    return image, raters


def _qubiq_image(
    name: str, truths: dict[int, np.ndarray], shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Structured MR/CT-like intensities: smooth background texture, blurred regions, Gaussian noise."""
    size = shape[0]

    def channel(contrasts: dict[int, float]) -> np.ndarray:
        img = 300.0 + 60.0 * _smooth_noise(shape, size / 8, rng)
        for task, value in contrasts.items():
            img += value * ndimage.gaussian_filter(truths[task].astype(np.float32), 1.0)
        img += rng.normal(0.0, 25.0, shape)
        return np.clip(img, 0.0, None).astype(np.float32)

    if name == "brain-tumor":  # FLAIR, T1, T1c, T2 with their usual contrasts of edema/enhancing/core
        modalities = [{1: 400.0}, {3: -120.0}, {2: 500.0, 3: 100.0}, {1: 300.0, 3: 100.0}]
        return np.stack([channel(c) for c in modalities], axis=-1)
    return channel({task: 250.0 * (1 + 0.5 * (task - 1)) for task in truths})


def _save(array: np.ndarray, affine: np.ndarray, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)


def generate_qubiq(
    out_dir: str,
    num_cases: int = 10,
    size: int = 64,
    depth: int = 32,
    seed: int = 0,
    datasets: Sequence[str] = QUBIQ_2020_DATASETS,
    missing_rater: bool = True,
) -> str:
    """
    Write a synthetic QUBIQ data set: ``<out_dir>/<dataset>/Training/caseNN/image.nii.gz`` and
    ``taskTT_segRR.nii.gz``, the content of the real ``training_data_v2`` (2020) or ``training_data_v3`` (2021)
    folder.

    The files mimic the real set: 2D NIfTI slices, prostate ``(H, W)``, kidney with a trailing singleton axis
    ``(H, W, 1)``, brain-tumor's four modalities in the last axis ``(H, W, 4)``; pancreas and pancreatic-lesion are
    3D ``(H, W, D)``. As in the real prostate set, one case (case09, or the last case with fewer than 9) lacks its
    last rater when ``missing_rater`` is True.

    Args:
        out_dir: the folder to write into (created if needed).
        num_cases: cases per dataset. Defaults to 10.
        size: in-plane size. Defaults to 64.
        depth: slices of the 3D sets. Defaults to 32.
        seed: random seed; the output depends only on the arguments. Defaults to 0.
        datasets: which QUBIQ folders to write. Defaults to the four of QUBIQ 2020.
        missing_rater: drop the last rater of one prostate case. Defaults to True.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: for ``num_cases < 1``, ``size < 16`` or an unknown dataset.
    """
    _check_sizes(num_cases, size, depth)
    affine_2d = np.diag([0.5, 0.5, 1.0, 1.0])
    for dataset in datasets:
        name = look_up_option(dataset, QUBIQ_2021_DATASETS, "datasets")
        affine = np.diag([0.8, 0.8, 2.5, 1.0]) if name in ("pancreas", "pancreatic-lesion") else affine_2d
        for index in range(num_cases):
            image, raters = synthesize_qubiq_case(name, index, size, depth, seed)
            case_dir = os.path.join(out_dir, name, "Training", f"case{index + 1:02d}")
            trailing = name == "kidney"  # the (H, W, 1) quirk
            _save(image[..., None] if trailing else image, affine, os.path.join(case_dir, "image.nii.gz"))
            drop = missing_rater and name == "prostate" and index == min(8, num_cases - 1)
            for task, stack in raters.items():
                for r in range(stack.shape[0] - (1 if drop else 0)):
                    mask = stack[r][..., None] if trailing else stack[r]
                    _save(mask, affine, os.path.join(case_dir, f"task{task:02d}_seg{r + 1:02d}.nii.gz"))
    return out_dir


def write_ct_volume(array_xyz: np.ndarray, path: str, spacing: Sequence[float], axial_first: bool) -> None:
    """
    Write a CT volume given in ``(x, y, z)`` order the way LiTS (``axial_first=False``: ``(x, y, z)``, affine
    ``diag(-sx, -sy, sz)``) or KiTS (``axial_first=True``: ``(z, y, x)`` with KiTS19's permuted affine
    ``[[0, 0, -sx], [0, -sy, 0], [-sz, 0, 0]]``, slices running inferior-wards) store it. Both describe the same
    physical volume, so ``Orientationd`` brings them to the same array.

    Args:
        array_xyz: the volume, axes ``(x, y, z)``.
        path: output file; ``.nii`` or ``.nii.gz``.
        spacing: ``(sx, sy, sz)`` in millimetres.
        axial_first: KiTS order when True, LiTS order when False.
    """
    sx, sy, sz = spacing
    if axial_first:  # slice i holds z index D - 1 - i: KiTS's affine runs the slices inferior-wards
        array = np.ascontiguousarray(np.transpose(array_xyz[:, :, ::-1], (2, 1, 0)))
        top = sz * (array_xyz.shape[2] - 1)
        affine = np.array([[0, 0, -sx, 0], [0, -sy, 0, 0], [-sz, 0, 0, top], [0, 0, 0, 1]], dtype=np.float64)
    else:
        array = array_xyz
        affine = np.diag([-sx, -sy, sz, 1.0])
    _save(array, affine, path)


def _ct_case(
    anatomy: str, index: int, size: int, depth: int, seed: int, with_tumour: bool
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], np.random.Generator]:
    """CT volume (x, y, z) in HU (int16), organ instances and tumour instances (binary), and the case's generator."""
    rng = _rng(seed, 100 + (anatomy == "kidney"), index)
    shape = (size, size, depth)
    c = [size / 2, size / 2, depth / 2]
    body = _blob(shape, c, (0.46 * size, 0.38 * size, 10.0 * depth), rng, 0.02)
    fat = body & ~_blob(shape, c, (0.41 * size, 0.33 * size, 10.0 * depth), rng, 0.03)
    spine = _blob(shape, [size / 2, 0.72 * size, depth / 2], (0.06 * size, 0.06 * size, 10.0 * depth), rng, 0.0)
    organs: list[np.ndarray] = []
    tumours: list[np.ndarray] = []
    jitter = rng.uniform(-0.04, 0.04, 3) * np.array(shape)
    if anatomy == "liver":
        centre = np.array([0.36 * size, 0.45 * size, 0.5 * depth]) + jitter
        organs.append(_blob(shape, centre, (0.2 * size, 0.17 * size, 0.32 * depth), rng, 0.1) & body & ~fat)
        organ_hu, tumour_hu = 58.0, 22.0
    else:  # two kidneys
        for side in (0.3, 0.7):
            centre = np.array([side * size, 0.6 * size, 0.5 * depth]) + jitter
            organs.append(_blob(shape, centre, (0.08 * size, 0.1 * size, 0.25 * depth), rng, 0.08, 0.3) & body)
        organ_hu, tumour_hu = 150.0, 70.0
    if with_tumour:
        organ = organs[0]
        inside = np.argwhere(ndimage.binary_erosion(organ, iterations=2))
        inside = inside if len(inside) > 0 else np.argwhere(organ)  # small organs at tiny sizes
        if len(inside) > 0:
            centre = inside[rng.integers(len(inside))].astype(np.float32)
            radius = max(rng.uniform(0.04, 0.07) * size, 2.0)
            tumour = _blob(shape, centre, (radius, radius, max(radius * depth / size, 1.5)), rng, 0.15) & organ
            if not tumour.any():  # at tiny sizes the rough blob can vanish: keep one voxel
                tumour[tuple(int(c) for c in centre)] = True
            tumours.append(tumour)
    hu = np.full(shape, -1000.0, dtype=np.float32)
    hu[body] = 40.0 + 8.0 * _smooth_noise(shape, 3.0, rng)[body]
    hu[fat] = -100.0
    hu[spine] = 450.0
    for organ in organs:
        hu[organ] = organ_hu
    for tumour in tumours:
        hu[tumour] = tumour_hu
    hu = ndimage.gaussian_filter(hu, 0.7) + rng.normal(0.0, 12.0, shape)
    return np.clip(hu, -1024, 3071).astype(np.int16), organs, tumours, rng


def _label_map(organs: Sequence[np.ndarray], tumours: Sequence[np.ndarray], shape: Sequence[int]) -> np.ndarray:
    label = np.zeros(tuple(shape), dtype=np.uint8)
    for organ in organs:
        label[organ] = 1
    for tumour in tumours:
        label[tumour] = 2
    return label


def _spacing(size: int, depth: int) -> tuple[float, float, float]:
    in_plane, axial = CT_SPACING_FOV_MM
    return in_plane / size, in_plane / size, axial / depth


def _check_sizes(num_cases: int, size: int, depth: int) -> None:
    if num_cases < 1:
        raise ValueError(f"num_cases must be at least 1, got {num_cases}.")
    if size < 16 or depth < 8:
        raise ValueError(f"size must be at least 16 and depth at least 8, got size={size}, depth={depth}.")


def generate_lits(
    out_dir: str, num_cases: int = 10, size: int = 64, depth: int = 48, seed: int = 0, msd: bool = False
) -> str:
    """
    Write a synthetic LiTS data set: liver (label 1) with a tumour inside (label 2) in a CT-like body, HU int16.

    LiTS form (default): ``Training Batch 1/volume-N.nii`` and ``segmentation-N.nii`` (uncompressed, like the real
    set; the first 28 % of the cases in batch 1, the rest in ``Training Batch 2``). MSD form (``msd=True``):
    ``Task03_Liver/imagesTr/liver_N.nii.gz`` and ``labelsTr/liver_N.nii.gz``. Volumes are ``(x, y, z)``, axial
    last. Case 1 (the second) has no tumour, as some real volumes.

    Args:
        out_dir: the folder to write into.
        num_cases: number of volumes. Defaults to 10.
        size: in-plane size. Defaults to 64.
        depth: number of axial slices. Defaults to 48.
        seed: random seed. Defaults to 0.
        msd: write the Medical Segmentation Decathlon form. Defaults to False.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: for ``num_cases < 1``, ``size < 16`` or ``depth < 8``.
    """
    _check_sizes(num_cases, size, depth)
    spacing = _spacing(size, depth)
    batch_one = max(int(round(0.28 * num_cases)), 1)
    for index in range(num_cases):
        volume, organs, tumours, _ = _ct_case("liver", index, size, depth, seed, with_tumour=index != 1)
        label = _label_map(organs, tumours, volume.shape)
        if msd:
            root = os.path.join(out_dir, "Task03_Liver")
            image_path = os.path.join(root, "imagesTr", f"liver_{index}.nii.gz")
            label_path = os.path.join(root, "labelsTr", f"liver_{index}.nii.gz")
        else:
            root = os.path.join(out_dir, "Training Batch 1" if index < batch_one else "Training Batch 2")
            image_path = os.path.join(root, f"volume-{index}.nii")
            label_path = os.path.join(root, f"segmentation-{index}.nii")
        write_ct_volume(volume, image_path, spacing, axial_first=False)
        write_ct_volume(label, label_path, spacing, axial_first=False)
    return out_dir


def generate_kits(
    out_dir: str,
    num_cases: int = 10,
    size: int = 64,
    depth: int = 48,
    seed: int = 0,
    instances: bool = False,
    num_annotations: int = 3,
) -> str:
    """
    Write a synthetic KiTS data set: ``case_XXXXX/imaging.nii.gz`` and ``segmentation.nii.gz`` with two kidneys
    (label 1) and a tumour (label 2) in one of them, stored axial first ``(z, y, x)`` with KiTS19's permuted affine.

    With ``instances=True`` (KiTS21/23) every kidney and tumour instance also gets ``num_annotations`` annotation
    files ``instances/<kidney|tumor>_instance-K_annotation-A.nii.gz`` that disagree like real annotators, and
    ``segmentation.nii.gz`` is their majority vote (as in KiTS23). Case 1 (the second) has no tumour.

    Args:
        out_dir: the folder to write into.
        num_cases: number of cases. Defaults to 10.
        size: in-plane size. Defaults to 64.
        depth: number of axial slices. Defaults to 48.
        seed: random seed. Defaults to 0.
        instances: write the KiTS21/23 instance annotations. Defaults to False (KiTS19).
        num_annotations: annotations per instance. Defaults to 3.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: for ``num_cases < 1``, ``size < 16``, ``depth < 8`` or ``num_annotations < 1``.
    """
    _check_sizes(num_cases, size, depth)
    if num_annotations < 1:
        raise ValueError(f"num_annotations must be at least 1, got {num_annotations}.")
    spacing = _spacing(size, depth)
    fuse = RaterFusion("majority", num_classes=3)
    for index in range(num_cases):
        volume, organs, tumours, rng = _ct_case("kidney", index, size, depth, seed, with_tumour=index != 1)
        case_dir = os.path.join(out_dir, f"case_{index:05d}")
        write_ct_volume(volume, os.path.join(case_dir, "imaging.nii.gz"), spacing, axial_first=True)
        if not instances:
            label = _label_map(organs, tumours, volume.shape)
            write_ct_volume(label, os.path.join(case_dir, "segmentation.nii.gz"), spacing, axial_first=True)
            continue
        per_annotator = np.zeros((num_annotations, *volume.shape), dtype=np.uint8)
        for structure, value, masks in (("kidney", 1, organs), ("tumor", 2, tumours)):
            rater_rng = _rng(seed, 200 + value)
            for k, mask in enumerate(masks, start=1):
                drawn = perturb_mask(mask, num_annotations, _KITS21_NOISE[structure], rng, rater_rng)
                for a in range(num_annotations):
                    name = f"{structure}_instance-{k}_annotation-{a + 1}.nii.gz"
                    write_ct_volume(drawn[a], os.path.join(case_dir, "instances", name), spacing, axial_first=True)
                    per_annotator[a][drawn[a] > 0] = value
        label = torch.argmax(torch.as_tensor(fuse(per_annotator)), dim=0).numpy().astype(np.uint8)
        write_ct_volume(label, os.path.join(case_dir, "segmentation.nii.gz"), spacing, axial_first=True)
    return out_dir


def generate_dataset(
    layout: Layout | str,
    out_dir: str,
    num_cases: int = 10,
    size: int = 64,
    depth: int | None = None,
    seed: int = 0,
    **kwargs,
) -> str:
    """
    Write a synthetic data set in one of the real layouts.

    Args:
        layout: {``"qubiq"``, ``"lits"``, ``"kits19"``, ``"kits21"``}.
        out_dir: the folder to write into (created if needed).
        num_cases: cases (per QUBIQ dataset). Defaults to 10.
        size: in-plane size. Defaults to 64.
        depth: slices of 3D volumes; None gives 48 for CT and 32 for the QUBIQ 3D sets.
        seed: random seed. Defaults to 0.
        kwargs: passed to :py:func:`generate_qubiq` (``datasets``, ``missing_rater``), :py:func:`generate_lits`
            (``msd``) or :py:func:`generate_kits` (``num_annotations``).

    Returns:
        ``out_dir``.

    Raises:
        ValueError: for an unknown ``layout`` or invalid sizes.
    """
    kind = look_up_option(layout, Layout, "layout")
    if kind == Layout.QUBIQ:
        return generate_qubiq(out_dir, num_cases, size, 32 if depth is None else depth, seed, **kwargs)
    depth = 48 if depth is None else depth
    if kind == Layout.LITS:
        return generate_lits(out_dir, num_cases, size, depth, seed, **kwargs)
    return generate_kits(out_dir, num_cases, size, depth, seed, instances=kind == Layout.KITS21, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Command line: ``python -m monai_dml.data.synthetic --layout qubiq|lits|kits19|kits21 --out DIR``.

    Args:
        argv: the arguments (without the program name); None reads ``sys.argv``.

    Returns:
        the exit status, 0.
    """
    parser = argparse.ArgumentParser(
        prog="python -m monai_dml.data.synthetic",
        description="Write a small synthetic data set in a real QUBIQ, LiTS or KiTS folder layout.",
    )
    parser.add_argument("--layout", required=True, choices=[m.value for m in Layout])
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument("--cases", type=int, default=10, help="cases (per QUBIQ dataset); default 10")
    parser.add_argument("--size", type=int, default=64, help="in-plane size; default 64")
    parser.add_argument("--depth", type=int, default=None, help="slices of 3D volumes; default 48 (CT), 32 (QUBIQ)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; default 0")
    parser.add_argument(
        "--qubiq-datasets",
        nargs="+",
        default=list(QUBIQ_2020_DATASETS),
        choices=list(QUBIQ_2021_DATASETS),
        help="QUBIQ folders to write; add pancreas pancreatic-lesion for QUBIQ 2021",
    )
    parser.add_argument("--msd", action="store_true", help="LiTS in the MSD Task03_Liver form")
    args = parser.parse_args(argv)
    kwargs: dict = {}
    if args.layout == Layout.QUBIQ:
        kwargs["datasets"] = args.qubiq_datasets
    elif args.layout == Layout.LITS:
        kwargs["msd"] = args.msd
    out = generate_dataset(args.layout, args.out, args.cases, args.size, args.depth, args.seed, **kwargs)
    print(f"wrote a synthetic {args.layout} data set with {args.cases} cases to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
