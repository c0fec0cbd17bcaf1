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
"""Ignite handler that draws the reliability diagram of an evaluation run."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from monai.handlers import from_engine
from monai.utils import IgniteInfo, min_version, optional_import

from monai_dml.metrics.calibration import ECEMetric, ECEMode
from monai_dml.visualize.figures import _pyplot, plot_reliability_diagram

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
idist, _ = optional_import("ignite", IgniteInfo.OPT_IMPORT_VERSION, min_version, "distributed")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["ReliabilityDiagramSaver"]


class ReliabilityDiagramSaver:
    """
    Accumulate the calibration bins of every voxel an engine sees and, when the epoch completes, write the reliability
    diagram (accuracy against confidence per bin, bin counts, pooled ECE in the title) as a PNG. Only the bin sums
    are kept (``num_bins`` numbers per class), never the predictions.

    Attach it to an evaluator next to the metric handlers::

        "val_handlers": [..., {"_target_": "monai_dml.handlers.ReliabilityDiagramSaver", "save_dir": "@output_dir"}]

    Under DDP every rank accumulates its own cases and only rank 0 writes, from its own cases.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        filename: str = "reliability_diagram.png",
        num_bins: int = 10,
        mode: ECEMode | str = ECEMode.TOP_LABEL,
        output_transform: Callable[[Any], Any] | None = None,
        title: str = "Reliability diagram",
    ) -> None:
        """
        Args:
            save_dir: folder of the PNG.
            filename: file name; ``{epoch}`` is replaced by the epoch number. Defaults to "reliability_diagram.png".
            num_bins: number of equal-width confidence bins. Defaults to 10.
            mode: ``"top_label"`` (one diagram) or ``"classwise"`` (the bins of all classes summed). Defaults to
                ``"top_label"``.
            output_transform: maps ``engine.state.output`` to ``(y_pred, y)`` probability maps (lists of
                channel-first tensors or batches). Defaults to None: ``from_engine(["pred", "label"])``.
            title: the figure title; the ECE is appended.

        Raises:
            ValueError: for ``num_bins < 1`` or an unknown ``mode`` (from :py:class:`monai_dml.metrics.ECEMetric`).
        """
        self.metric = ECEMetric(num_bins=num_bins, mode=mode)
        self.save_dir = os.fspath(save_dir)
        self.filename = filename
        self.output_transform = output_transform or from_engine(["pred", "label"])
        self.title = title

    def attach(self, engine: Engine) -> None:
        """Register the reset, update and write callbacks on ``engine``."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._update)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _reset(self, engine: Engine) -> None:
        self.metric.reset()

    def _update(self, engine: Engine) -> None:
        y_pred, y = self.output_transform(engine.state.output)
        if isinstance(y_pred, (list, tuple)):
            y_pred, y = torch.stack(list(y_pred)), torch.stack(list(y))
        self.metric(y_pred.detach(), y.detach())

    def _write(self, engine: Engine) -> None:
        if idist.get_rank() != 0:
            return
        counts, sum_conf, sum_acc = (t.sum(dim=0) for t in self.metric.pooled_bin_sums())
        filled = counts.clamp_min(1)
        path = os.path.join(self.save_dir, self.filename.format(epoch=engine.state.epoch))
        fig = plot_reliability_diagram(sum_conf / filled, sum_acc / filled, counts, path=path, title=self.title)
        fig.clf()
        _pyplot().close(fig)  # pyplot keeps every figure open until closed
