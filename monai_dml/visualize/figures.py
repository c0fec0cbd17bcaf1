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
"""Figures for soft-label segmentation: reliability diagrams and overlays (PNG via matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.config import NdarrayOrTensor
from monai.utils import convert_to_numpy, optional_import

plt, has_matplotlib = optional_import("matplotlib.pyplot")

__all__ = ["plot_overlay", "plot_reliability_diagram"]


def _pyplot() -> Any:
    if not has_matplotlib:
        raise ImportError("monai_dml.visualize needs matplotlib: pip install 'monai-dml[plot]'.")
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")  # headless: figures are written to files
    return plt


def _save(fig: Any, path: str | os.PathLike | None) -> None:
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")


def plot_reliability_diagram(
    bin_confidence: NdarrayOrTensor,
    bin_accuracy: NdarrayOrTensor,
    bin_count: NdarrayOrTensor,
    path: str | os.PathLike | None = None,
    title: str = "Reliability diagram",
) -> Any:
    """
    Accuracy against confidence per bin, with the bin counts, the gap to the diagonal and the ECE in the title.

    Args:
        bin_confidence: mean confidence per bin, shape ``(num_bins,)`` (NaN for empty bins).
        bin_accuracy: accuracy per bin, shape ``(num_bins,)`` (NaN for empty bins).
        bin_count: number of voxels per bin, shape ``(num_bins,)``.
        path: where to write the PNG; None only returns the figure.
        title: the title; the ECE (in %) is appended.

    Returns:
        the matplotlib ``Figure``.

    Raises:
        ValueError: when the three inputs differ in length or the counts are all zero.
        ImportError: when matplotlib is not installed.
    """
    conf, acc, count = (
        np.asarray(convert_to_numpy(v), dtype=np.float64).ravel() for v in (bin_confidence, bin_accuracy, bin_count)
    )
    if not (len(conf) == len(acc) == len(count)) or len(conf) == 0:
        raise ValueError(f"bin arrays must have one equal, non-zero length, got {len(conf)}, {len(acc)}, {len(count)}.")
    total = count.sum()
    if total <= 0:
        raise ValueError("bin_count holds no voxel: nothing to plot.")
    filled = count > 0
    ece = float(np.sum(count[filled] / total * np.abs(acc[filled] - conf[filled])))
    n_bins = len(conf)
    edges = np.linspace(0, 1, n_bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    width = 1.0 / n_bins
    pyplot = _pyplot()
    fig, (ax, ax_count) = pyplot.subplots(2, 1, figsize=(4.5, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(centres[filled], acc[filled], width=width, edgecolor="black", color="tab:blue", label="accuracy")
    gap_bottom = np.minimum(acc, conf)[filled]
    ax.bar(
        centres[filled], np.abs(acc - conf)[filled], bottom=gap_bottom, width=width, color="tab:red", alpha=0.3,
        edgecolor="tab:red", label="gap",
    )  # fmt: skip
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE = {100 * ece:.2f} %", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax_count.bar(centres, count, width=width, color="gray", edgecolor="black")
    ax_count.set_yscale("log" if count.max() > 100 * max(count[filled].min(), 1) else "linear")
    ax_count.set_xlabel("confidence")
    ax_count.set_ylabel("voxels")
    _save(fig, path)
    return fig


def _slice(volume: np.ndarray, slice_index: int | None) -> np.ndarray:
    if volume.ndim == 2:
        return volume
    index = volume.shape[-1] // 2 if slice_index is None else slice_index
    if not 0 <= index < volume.shape[-1]:
        raise ValueError(f"slice_index must be in [0, {volume.shape[-1] - 1}], got {slice_index}.")
    return volume[..., index]


def plot_overlay(
    image: NdarrayOrTensor,
    raters: NdarrayOrTensor | None = None,
    soft_label: NdarrayOrTensor | None = None,
    prediction: NdarrayOrTensor | None = None,
    path: str | os.PathLike | None = None,
    slice_index: int | None = None,
    title: str | None = None,
    panel_titles: Sequence[str] | None = None,
) -> Any:
    """
    One case side by side: the image with each rater's contour, the soft label, and the prediction, all with the
    contour of the soft label's 0.5 level for reference.

    Args:
        image: channel-first intensities ``(C, H, W[, D])``; the first channel is shown.
        raters: ``(R, H, W[, D])`` binary masks, or None.
        soft_label: channel-first ``(C, H, W[, D])`` probabilities; one channel is the foreground, with several
            channels the foreground is ``1 - channel 0`` (everything but the background). Or None.
        prediction: like ``soft_label``, or None.
        path: where to write the PNG; None only returns the figure.
        slice_index: for 3D inputs, the index along the last axis; None takes the middle slice.
        title: a figure title (e.g. the case id), or None.
        panel_titles: the three panel titles (image with contours, ``soft_label``, ``prediction``); None gives
            ``("image and raters", "soft label", "prediction")``.

    Returns:
        the matplotlib ``Figure``.

    Raises:
        ValueError: when the spatial shapes disagree or ``slice_index`` is out of range.
        ImportError: when matplotlib is not installed.
    """
    img = convert_to_numpy(image, dtype=np.float32)
    if img.ndim not in (3, 4):
        raise ValueError(f"image must be channel-first (C, H, W[, D]), got shape {img.shape}.")
    img = img[0]
    spatial = img.shape
    names = ("image and raters", "soft label", "prediction") if panel_titles is None else tuple(panel_titles)
    if len(names) != 3:
        raise ValueError(f"panel_titles must hold 3 titles, got {len(names)}.")
    shown_names = dict(zip(("image and raters", "soft label", "prediction"), names, strict=True))
    panels: list[tuple[str, np.ndarray | None]] = [("image and raters", None)]
    maps: dict[str, np.ndarray] = {}
    for name, value in (("soft label", soft_label), ("prediction", prediction)):
        if value is None:
            continue
        arr = convert_to_numpy(value, dtype=np.float32)
        if arr.ndim != len(spatial) + 1:
            raise ValueError(f"{name} must be channel-first (C, H, W[, D]), got shape {arr.shape}.")
        arr = arr[0] if arr.shape[0] == 1 else 1.0 - arr[0]
        if arr.shape != spatial:
            raise ValueError(f"{name} has spatial shape {arr.shape} but image has {spatial}.")
        maps[name] = _slice(arr, slice_index)
        panels.append((name, maps[name]))
    rater_arr = None if raters is None else convert_to_numpy(raters, dtype=np.float32)
    if rater_arr is not None and rater_arr.shape[1:] != spatial:
        raise ValueError(f"raters have spatial shape {rater_arr.shape[1:]} but image has {spatial}.")
    pyplot = _pyplot()
    fig, axes = pyplot.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.8), squeeze=False)
    base = _slice(img, slice_index)
    for ax, (name, data) in zip(axes[0], panels, strict=True):
        if data is None:
            ax.imshow(base, cmap="gray")
            if rater_arr is not None:
                colours = pyplot.cm.tab10(np.arange(len(rater_arr)) % 10)
                for r, mask in enumerate(rater_arr):
                    m = _slice(mask, slice_index)
                    if m.max() > m.min():
                        ax.contour(m, levels=[0.5], colors=[colours[r]], linewidths=1)
        else:
            shown = ax.imshow(data, cmap="viridis", vmin=0, vmax=1)
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        if "soft label" in maps and maps["soft label"].max() > 0.5 > maps["soft label"].min():
            ax.contour(maps["soft label"], levels=[0.5], colors="white", linewidths=0.8, linestyles="dashed")
        ax.set_title(shown_names[name], fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11)
    _save(fig, path)
    return fig
