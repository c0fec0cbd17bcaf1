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
The teacher-calibration step of the distillation recipe (Wang et al. 2023, Sect. 3.5): a calibrator chosen by
name, and an ignite handler that samples the voxels of a validation run to fit it on
(``bundles/{lits_2d,kits_2d}/configs/calibrate_teacher.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.utils import StrEnum, convert_to_tensor

from monai_dml.calibration.posthoc import KDECalibrator, PosthocCalibrator, TemperatureScaling
from monai_dml.metrics.kde import DEFAULT_BANDWIDTH
from monai_dml.utils import look_up_option

__all__ = ["CalibrationMethod", "CalibrationSampler", "calibrated", "calibrator_by_name"]


class CalibrationMethod(StrEnum):
    """Post-hoc calibrators of a teacher: ``temperature`` (:py:class:`TemperatureScaling`), ``kde``
    (:py:class:`KDECalibrator`)."""

    TEMPERATURE = "temperature"
    KDE = "kde"


def calibrator_by_name(
    method: CalibrationMethod | str, bandwidth: float = DEFAULT_BANDWIDTH, max_fit_voxels: int = 2000, seed: int = 0
) -> PosthocCalibrator:
    """
    An unfitted calibrator.

    Args:
        method: {``"temperature"``, ``"kde"``}.
        bandwidth: the KDE bandwidth ``h`` (``"kde"`` only). Defaults to 0.02.
        max_fit_voxels: voxels the KDE keeps from the fitting sample (its cost per calibrated voxel is linear in it);
            temperature scaling fits on every sampled voxel. Defaults to 2000.
        seed: seed of the calibrators' voxel draws.

    Raises:
        ValueError: naming ``method`` when unknown, or the arguments the calibrator rejects.
    """
    kind = look_up_option(method, CalibrationMethod, "method")
    if kind == CalibrationMethod.TEMPERATURE:
        return TemperatureScaling(max_fit_voxels=None, seed=seed)
    return KDECalibrator(bandwidth=bandwidth, max_fit_voxels=max_fit_voxels, seed=seed)


class CalibrationSampler:
    """
    Collects a uniform sample of ``(probability, label)`` voxels from every case an evaluator runs over, then fits a
    calibrator on the pooled sample. Attach it to a ``SupervisedEvaluator`` whose post-processing leaves
    probabilities in ``pred_key`` and a one-hot label in ``label_key`` (the bundles' ``validate#evaluator``).

    Example:
        >>> import torch
        >>> from monai_dml.calibration import TemperatureScaling
        >>> sampler = CalibrationSampler(voxels_per_case=100)
        >>> p = torch.softmax(torch.randn(2, 8, 8), dim=0)
        >>> y = torch.nn.functional.one_hot(torch.multinomial(p.reshape(2, -1).T, 1)[:, 0], 2).T.reshape(2, 8, 8)
        >>> sampler.add(p, y.float())
        >>> sampler.probs[0].shape  # 64 voxels: all kept
        torch.Size([2, 64])
        >>> sampler.fit(TemperatureScaling()).temperature > 0
        True
    """

    def __init__(
        self, voxels_per_case: int = 20000, pred_key: str = "pred", label_key: str = "label", seed: int = 0
    ) -> None:
        """
        Args:
            voxels_per_case: voxels drawn (without replacement) from each case; all when a case has fewer.
            pred_key: the output key of the probabilities ``(C, spatial...)``.
            label_key: the output key of the one-hot (or soft) label, same shape.
            seed: seed of the draws.

        Raises:
            ValueError: for ``voxels_per_case < 1``.
        """
        if int(voxels_per_case) < 1:
            raise ValueError(f"voxels_per_case must be at least 1, got {voxels_per_case}.")
        self.voxels_per_case = int(voxels_per_case)
        self.pred_key = pred_key
        self.label_key = label_key
        self.generator = torch.Generator().manual_seed(seed)
        self.probs: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def attach(self, engine: Any) -> None:
        """Collect at the end of every iteration of ``engine``."""
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        """Sample the decollated outputs of the last iteration."""
        for item in engine.state.output:
            self.add(item[self.pred_key], item[self.label_key])

    def add(self, pred: Any, label: Any) -> None:
        """
        Sample one case.

        Args:
            pred: probabilities ``(C, spatial...)``.
            label: the label, same shape.

        Raises:
            ValueError: when the shapes differ.
        """
        p = convert_to_tensor(pred, track_meta=False).detach().cpu().float()
        y = convert_to_tensor(label, track_meta=False).detach().cpu().float()
        if p.shape != y.shape or p.ndim < 2:
            raise ValueError(
                f"{self.pred_key!r} and {self.label_key!r} must have the same shape (C, spatial...), got "
                f"{tuple(p.shape)} and {tuple(y.shape)}."
            )
        p, y = p.reshape(p.shape[0], -1), y.reshape(y.shape[0], -1)
        n = p.shape[1]
        if n > self.voxels_per_case:
            index = torch.randperm(n, generator=self.generator)[: self.voxels_per_case]
            p, y = p[:, index], y[:, index]
        self.probs.append(p)
        self.labels.append(y)

    def fit(self, calibrator: PosthocCalibrator) -> PosthocCalibrator:
        """
        Fit ``calibrator`` on every voxel sampled so far (as one ``(1, C, n)`` case) and return it.

        Raises:
            RuntimeError: when no case was sampled.
        """
        if not self.probs:
            raise RuntimeError("CalibrationSampler has no samples: run the evaluator it is attached to first.")
        probs = torch.cat(self.probs, dim=1)[None]
        labels = torch.cat(self.labels, dim=1)[None]
        return calibrator.fit(probs, labels)


def calibrated(calibrator: PosthocCalibrator) -> Callable[[Any], Any]:
    """
    The function ``probs (C, spatial...) -> calibrated probs`` of a (later) fitted calibrator, for ``Lambdad``.

    Args:
        calibrator: a :py:class:`PosthocCalibrator`, fitted before the returned function is called.

    Returns:
        a function of one unbatched probability map ``(C, spatial...)`` returning its calibrated map, same shape.
    """

    def apply(probs: Any) -> Any:
        return calibrator(probs, batched=False)

    return apply
