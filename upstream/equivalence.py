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
Each upstream class (in the patched MONAI) against its monai_dml counterpart, on random inputs.

Run by ``upstream/check.py`` with the patched tree first on ``PYTHONPATH`` (``UPSTREAM_TREE`` names it), so that
``monai`` here is the patched MONAI; monai_dml runs on it too. Where the two sides differ on purpose (the
upstream names, the empty-reference convention of the soft Dice) the mapping is written out below.
"""

# The upstream names exist only in the patched MONAI; mypy sees the installed one.
# mypy: disable-error-code="attr-defined,call-arg"
from __future__ import annotations

import importlib
import os
import unittest
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss, DiceFocalLoss, FocalLoss
from monai.metrics import SoftDiceMetric, compute_binarized_dice, compute_soft_dice
from monai.transforms import LabelSmoothing, RaterFusion
from monai.utils import optional_import
from parameterized import parameterized

from monai_dml.losses import DMLCELoss, DMLoss
from monai_dml.metrics import (
    BinarizedDiceMetric,
    SoftDiceMetric as DMLSoftDiceMetric,
    compute_binarized_dice as dml_binarized_dice,
    compute_soft_dice as dml_soft_dice,
)
from monai_dml.transforms import LabelSmoothing as DMLLabelSmoothing, RaterFusion as DMLRaterFusion

_, has_itk = optional_import("itk", allow_namespace_pkg=True)


def setUpModule() -> None:
    import monai

    tree = os.environ.get("UPSTREAM_TREE")
    if not tree or not Path(monai.__file__).resolve().is_relative_to(Path(tree).resolve()):
        raise RuntimeError(f"monai was imported from {monai.__file__}, not from the patched tree {tree}.")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _soft(shape: tuple[int, ...], seed: int, channels_sum_to_one: bool) -> torch.Tensor:
    g = _generator(seed)
    if channels_sum_to_one:
        return torch.softmax(3 * torch.randn(shape, generator=g), dim=1)
    return torch.rand(shape, generator=g)


def _close(test: unittest.TestCase, a: object, b: object, atol: float = 1e-6) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=1e-5, atol=atol)


# args for both losses, whether the target has several channels summing to 1, input shape
LOSS_CASES = [
    [{"softmax": True}, (2, 3, 8, 7)],
    [{"softmax": True, "include_background": False, "weight": torch.tensor([0.2, 1.0, 2.0])}, (2, 3, 6, 5, 4)],
    [{"softmax": True, "batch": True, "jaccard": True}, (3, 2, 9, 8)],
    [{"sigmoid": True}, (2, 1, 8, 8)],
    [{"sigmoid": True, "batch": True, "smooth_nr": 0.0, "smooth_dr": 1e-3}, (2, 1, 5, 6, 3)],
]


class TestLossEquivalence(unittest.TestCase):
    @parameterized.expand(LOSS_CASES)
    def test_dice_ce_soft_label(self, args, shape):
        # upstream DiceCELoss(soft_label=True) is monai_dml's DMLCELoss (DML1 + soft-target CE), value and gradient
        target = _soft(shape, 1, channels_sum_to_one=shape[1] > 1)
        logits = [torch.randn(shape, generator=_generator(2), dtype=torch.float32).requires_grad_() for _ in range(2)]
        with torch.no_grad():
            logits[1].copy_(logits[0])
        upstream = DiceCELoss(soft_label=True, lambda_dice=0.75, lambda_ce=0.25, **args)(logits[0], target)
        dml = DMLCELoss(lambda_ce=0.25, lambda_dml=0.75, variant="dml1", **args)(logits[1], target)
        _close(self, upstream.item(), dml.item())
        upstream.backward()
        dml.backward()
        _close(self, logits[0].grad, logits[1].grad, atol=1e-7)

    @parameterized.expand(LOSS_CASES)
    def test_dice_focal_soft_label(self, args, shape):
        # upstream DiceFocalLoss(soft_label=True): DML1 (monai_dml's DMLoss) plus MONAI's focal loss of the soft target
        target = _soft(shape, 3, channels_sum_to_one=shape[1] > 1)
        logits = torch.randn(shape, generator=_generator(4))
        if "weight" in args and not args.get("include_background", True):
            # DiceFocalLoss passes `weight` to both terms as it is: one value per class after the background removal
            args = {**args, "weight": args["weight"][1:]}
        focal_args = {k: args[k] for k in ("include_background", "weight") if k in args}
        upstream = DiceFocalLoss(soft_label=True, lambda_dice=0.6, lambda_focal=0.4, **args)(logits, target)
        expected = 0.6 * DMLoss(variant="dml1", **args)(logits, target) + 0.4 * FocalLoss(**focal_args)(logits, target)
        _close(self, upstream.item(), expected.item())


class TestMetricEquivalence(unittest.TestCase):
    @parameterized.expand([[(3, 2, 9, 8), True], [(2, 3, 5, 4, 6), False], [(4, 1, 16), True]])
    def test_soft_dice(self, shape, include_background):
        # random soft maps are never empty, where the two sides agree (they differ only on empty references)
        y_pred, y = _soft(shape, 5, False), _soft(shape, 6, False)
        _close(self, compute_soft_dice(y_pred, y, include_background), dml_soft_dice(y_pred, y, include_background))
        upstream, dml = SoftDiceMetric(include_background), DMLSoftDiceMetric(include_background)
        for k in range(3):
            y_pred, y = _soft(shape, 10 + k, False), _soft(shape, 20 + k, False)
            upstream(y_pred, y)
            dml(y_pred, y)
        _close(self, upstream.aggregate(), dml.aggregate())

    @parameterized.expand([[(3, 1, 12, 10), None], [(2, 2, 7, 6, 5), (0.25, 0.5, 0.75)]])
    def test_binarized_dice(self, shape, thresholds):
        levels = {} if thresholds is None else {"thresholds": thresholds}
        upstream, dml = SoftDiceMetric(binarize=True, **levels), BinarizedDiceMetric(**levels)
        for k in range(3):
            # a quantised reference, as the mean of raters is, with empty levels at the top
            y_pred, y = _soft(shape, 30 + k, False), torch.round(_soft(shape, 40 + k, False) * 5) / 6
            _close(self, compute_binarized_dice(y_pred, y, **levels), dml_binarized_dice(y_pred, y, **levels))
            upstream(y_pred, y)
            dml(y_pred, y)
        _close(self, upstream.aggregate(), dml.aggregate())


def _raters(n_raters: int, spatial: tuple[int, ...], num_classes: int | None, seed: int) -> torch.Tensor:
    """A random consensus shape with per-rater noise, so that the raters mostly agree as real ones do."""
    g = _generator(seed)
    high = 2 if num_classes is None else num_classes
    consensus = torch.randint(0, high, spatial, generator=g)
    noise = torch.rand((n_raters, *spatial), generator=g) < 0.2
    return torch.where(noise, torch.randint(0, high, (n_raters, *spatial), generator=g), consensus)


# upstream method -> monai_dml method ("mean" is monai_dml's "uniform")
FUSION_METHODS = {"majority": "majority", "mean": "uniform", "weighted": "weighted"}
FUSION_CASES = [
    [method, n_raters, spatial, num_classes]
    for method in FUSION_METHODS
    for n_raters, spatial, num_classes in [(3, (9, 8), None), (4, (6, 5, 4), None), (5, (7, 6), 3), (2, (4, 5, 3), 4)]
]


class TestFusionEquivalence(unittest.TestCase):
    @parameterized.expand(FUSION_CASES)
    def test_fusion(self, method, n_raters, spatial, num_classes):
        raters = _raters(n_raters, spatial, num_classes, seed=n_raters)
        upstream = RaterFusion(method, num_classes=num_classes)(raters)
        dml = DMLRaterFusion(FUSION_METHODS[method], num_classes=num_classes)(raters)
        _close(self, upstream, dml)

    def test_user_weights(self):
        raters = _raters(3, (8, 8), 3, seed=7)
        weights = [0.5, 2.0, 1.0]
        upstream = RaterFusion("weighted", num_classes=3, weights=weights)(raters.numpy())
        _close(self, upstream, DMLRaterFusion("weighted", num_classes=3, weights=weights)(raters.numpy()))

    @unittest.skipUnless(has_itk, "Requires itk")
    def test_staple(self):
        # small images: ITK's first call dominates the time
        for raters, num_classes in [(_raters(3, (6, 5), None, 11), None), (_raters(4, (4, 3, 3), 3, 12), 3)]:
            upstream = RaterFusion("staple", num_classes=num_classes)(raters)
            dml = DMLRaterFusion("staple", num_classes=num_classes)(raters)
            _close(self, upstream, dml)


SMOOTHING_CASES = [
    [{"method": "uniform", "epsilon": 0.2}, "binary", (1, 9, 8)],
    [{"method": "uniform", "epsilon": 0.3}, "soft", (3, 6, 5, 4)],
    [{"method": "boundary", "epsilon": 0.5, "num_classes": 3}, "labels", (1, 10, 9)],
    [{"method": "boundary", "epsilon": 0.4, "width": 2}, "binary", (1, 7, 6, 5)],
    [{"method": "boundary", "epsilon": 0.1, "num_classes": 4, "width": 1}, "labels", (1, 6, 6, 6)],
    [{"method": "svls", "sigma": 1.0, "kernel_size": 3}, "soft", (2, 8, 9)],
    [{"method": "svls", "sigma": 2.0, "kernel_size": 5}, "labels_4", (1, 7, 6, 5)],
    [{"method": "svls", "sigma": 0.7, "kernel_size": 3}, "binary", (1, 9, 9)],
]


class TestSmoothingEquivalence(unittest.TestCase):
    @parameterized.expand(SMOOTHING_CASES)
    def test_smoothing(self, args, kind, shape):
        g = _generator(len(shape) + shape[1])
        if kind == "binary":
            label = (torch.rand(shape, generator=g) > 0.5).float()
        elif kind == "soft":
            label = torch.softmax(3 * torch.randn((1, *shape), generator=g), dim=1)[0]
        else:
            if kind == "labels_4":
                args = {**args, "num_classes": 4}
            label = torch.randint(0, args["num_classes"], shape, generator=g)
        _close(self, LabelSmoothing(**args)(label), DMLLabelSmoothing(**args)(label))


class TestDocsNames(unittest.TestCase):
    def test_docs_entries_exist(self):
        # every autoclass/autofunction line the patches add to docs/source names an object of the patched MONAI
        entries = [e.split(":") for e in os.environ.get("UPSTREAM_DOCS_NAMES", "").split(",") if e]
        self.assertTrue(entries, "the patches add no docs entries")
        for module, name in entries:
            self.assertTrue(hasattr(importlib.import_module(module), name), f"{module}.{name} (docs/source)")


if __name__ == "__main__":
    unittest.main()
