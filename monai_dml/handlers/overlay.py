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
"""Ignite handler that draws the image, the prediction and the reference of the first cases of an evaluation run."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from monai.data import MetaTensor
from monai.handlers import from_engine
from monai.utils import IgniteInfo, min_version, optional_import

from monai_dml.visualize.figures import plot_overlay

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
idist, _ = optional_import("ignite", IgniteInfo.OPT_IMPORT_VERSION, min_version, "distributed")
plt, _ = optional_import("matplotlib.pyplot")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["OverlaySaver"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _foreground(prob: torch.Tensor) -> torch.Tensor:
    """
    The foreground mask of a channel-first map.

    Args:
        prob: ``(C, *spatial)`` probabilities (or a one-channel class-index map); one channel: foreground where
            ``> 0.5``; several channels: foreground where the argmax is not channel 0.

    Returns:
        a ``(1, *spatial)`` float tensor of 0 and 1 on the CPU.
    """
    prob = torch.as_tensor(prob).detach().float().cpu()
    mask = prob[0] > 0.5 if prob.shape[0] == 1 else prob.argmax(dim=0) != 0
    return mask[None].float()


def _pick(value: Any, index: int) -> Any:
    """Item ``index`` of a batched value (a list, tuple or tensor with a batch axis); any other value as it is."""
    if isinstance(value, (list, tuple)) or (isinstance(value, torch.Tensor) and value.ndim > 0):
        return value[index]
    return value


def _as_items(value: Any) -> list[Any]:
    """A batch (a tensor with a batch axis, a list or a tuple) as a list of items; None as an empty list."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value[i] for i in range(len(value))]


class OverlaySaver:
    """
    Write one PNG per case for the first ``num_cases`` cases an engine sees in each epoch: the image with the
    contour of the prediction and (dashed, white) the reference contour, the reference mask, and the prediction mask
    (:py:func:`monai_dml.visualize.plot_overlay`). Predictions and labels are binarised first: a one-channel map is
    foreground where it exceeds 0.5 (a soft label thus shows its majority vote), a multi-channel map where its argmax
    is not the background channel 0. A 3D case is shown on the slice along the last axis with the most reference
    foreground (the prediction's when the reference is empty, the middle slice when both are).

    Attach it to an evaluator next to the metric handlers::

        "val_handlers": [..., {"_target_": "monai_dml.handlers.OverlaySaver", "save_dir": "@output_dir"}]

    The prediction must be a probability map (e.g. ``Activationsd(keys="pred", sigmoid=True)`` in the evaluator's
    ``postprocessing``); logits of a one-channel network would be cut at 0.5, not at 0.

    The case name in the file name is, in order: ``engine.state.batch[case_key]`` when ``case_key`` is given and
    found; the base name of the image's ``filename_or_obj`` meta data (of the image :py:class:`monai.data.MetaTensor`
    or of ``batch["image_meta_dict"]``) without ``.nii``/``.nii.gz``; else the running case index of the epoch. Names
    are reduced to letters, digits, ``.``, ``_`` and ``-``; a name seen before in the epoch gets ``_{index}``
    appended so that no file is overwritten.

    Under DDP only rank 0 writes, from its own first cases.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        num_cases: int = 4,
        filename: str = "overlay_{case}.png",
        output_transform: Callable[[Any], Any] | None = None,
        image_channel: int = 0,
        case_key: str | None = None,
    ) -> None:
        """
        Args:
            save_dir: folder of the PNGs; created when the first one is written.
            num_cases: how many cases to draw per epoch. Defaults to 4.
            filename: file name; ``{case}`` is replaced by the case name, ``{index}`` by the case's index in the
                epoch (from 0) and ``{epoch}`` by the epoch number. Defaults to "overlay_{case}.png" (each epoch
                overwrites the previous one's files).
            output_transform: maps ``engine.state.output`` to ``(image, pred, label)``, each a list of channel-first
                tensors ``(C, *spatial)`` or a batch ``(B, C, *spatial)``; ``label`` may be None. Defaults to None:
                ``from_engine(["image", "pred", "label"])``, which reads MONAI evaluators' decollated output (a list
                of dicts) as well as a dict of batches (``decollate=False``).
            image_channel: the image channel to show. Defaults to 0.
            case_key: a key of ``engine.state.batch`` holding the case ids (e.g. ``"case"``), looked up before the
                meta data; None (default) uses the meta data only.

        Raises:
            ValueError: for ``num_cases < 1``.
        """
        if num_cases < 1:
            raise ValueError(f"num_cases must be at least 1, got {num_cases}.")
        self.save_dir = os.fspath(save_dir)
        self.num_cases = num_cases
        self.filename = filename
        self.output_transform = output_transform or from_engine(["image", "pred", "label"])
        self.image_channel = image_channel
        self.case_key = case_key
        self._seen = 0
        self._names: set[str] = set()

    def attach(self, engine: Engine) -> None:
        """Register the reset and write callbacks on ``engine``."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._write)

    def _reset(self, engine: Engine) -> None:
        self._seen = 0
        self._names = set()

    def _write(self, engine: Engine) -> None:
        if self._seen >= self.num_cases or idist.get_rank() != 0:
            return
        images, preds, labels = self.output_transform(engine.state.output)
        images, preds, labels = _as_items(images), _as_items(preds), _as_items(labels)
        if (labels and len(labels) != len(images)) or len(preds) != len(images):
            raise ValueError(
                f"output_transform gave {len(images)} images, {len(preds)} predictions and {len(labels)} labels."
            )
        os.makedirs(self.save_dir, exist_ok=True)
        for i, (image, pred) in enumerate(zip(images, preds, strict=True)):
            if self._seen >= self.num_cases:
                return
            name = self._case_name(engine, image, i)
            path = os.path.join(
                self.save_dir, self.filename.format(case=name, index=self._seen, epoch=engine.state.epoch)
            )
            self._plot(image, pred, labels[i] if labels else None, path, name)
            self._seen += 1

    def _plot(self, image: torch.Tensor, pred: torch.Tensor, label: torch.Tensor | None, path: str, title: str) -> None:
        """Draw one case: ``image``, ``pred`` and ``label`` are channel-first ``(C, *spatial)``."""
        image = torch.as_tensor(image).detach().cpu()[self.image_channel][None]
        pred_mask = _foreground(pred)
        label_mask = None if label is None else _foreground(label)
        slice_index = None
        if pred_mask.ndim == 4:  # (1, H, W, D): the slice with the most foreground
            for mask in (label_mask, pred_mask):
                if mask is not None and mask.any():
                    slice_index = int(mask.sum(dim=(0, 1, 2)).argmax())
                    break
        probabilities = torch.as_tensor(pred).detach().cpu().float()
        fig = plot_overlay(
            image, raters=pred_mask, soft_label=label_mask, prediction=probabilities, path=path,
            slice_index=slice_index, title=title,
            panel_titles=("image, predicted contour", "reference (> 0.5 / arg-max)", "predicted probability"),
        )  # fmt: skip
        plt.close(fig)

    def _case_name(self, engine: Engine, image: Any, index: int) -> str:
        """The sanitised name of item ``index`` of the current batch, unique within the epoch."""
        batch = engine.state.batch
        item: Any = {}
        at: int | None = None  # the case's place in the batch dict's values; None: item is the case's own dict
        if isinstance(batch, dict):
            item, at = batch, index
        elif isinstance(batch, list) and index < len(batch) and isinstance(batch[index], dict):
            item = batch[index]
        raw: Any = None
        if self.case_key is not None and self.case_key in item:
            raw = item[self.case_key] if at is None else _pick(item[self.case_key], at)
            if isinstance(raw, torch.Tensor):
                raw = raw.item() if raw.numel() == 1 else None
        if raw is None:
            raw = self._meta_filename(image, item, at)
        name = _UNSAFE.sub("_", str(raw)).strip("_") if raw is not None else ""
        if not name or name in self._names:
            name = f"{name}_{self._seen}" if name else str(self._seen)
        self._names.add(name)
        return name

    @staticmethod
    def _meta_filename(image: Any, item: Any, index: int | None) -> str | None:
        """
        The base name, without ``.nii``/``.nii.gz``, of the ``filename_or_obj`` meta data of ``image`` or, failing
        that, of ``item`` (one case's dict, or the batch dict with ``index`` the case's place in it).
        """
        value: Any = None
        if isinstance(image, MetaTensor):
            value = image.meta.get("filename_or_obj")
        if value is None and isinstance(item, dict):
            source = item.get("image")
            meta = source.meta if isinstance(source, MetaTensor) else item.get("image_meta_dict")
            value = meta.get("filename_or_obj") if isinstance(meta, dict) else None
            if index is not None and value is not None:
                value = _pick(value, index)
        if not isinstance(value, (str, os.PathLike)):
            return None
        base = os.path.basename(os.path.normpath(os.fspath(value)))
        for ext in (".nii.gz", ".nii"):
            if base.endswith(ext):
                return base[: -len(ext)]
        return base or None
