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

from __future__ import annotations

import itertools
import unittest

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.losses import DiceLoss
from monai.networks import one_hot
from parameterized import parameterized

from monai_dml.losses import DMLoss

VARIANTS = ["sdl", "dml1", "dml2"]

# The argument combinations of MONAI's own DiceLoss test suite (tests/losses/test_dice_loss.py), inputs included.
# Expected values are not copied: each case is compared against monai.losses.DiceLoss at run time.
_X2 = torch.tensor([[[[1.0, -1.0], [-1.0, 1.0]]], [[[1.0, -1.0], [-1.0, 1.0]]]])
_X3 = torch.tensor([[[-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
_Y3 = torch.tensor([[[1.0, 0.0, 0.0]], [[1.0, 1.0, 0.0]]])
_X1 = torch.tensor([[[[1.0, -1.0], [-1.0, 1.0]]]])
_Y1 = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
_XB = torch.tensor([[[[1.0, -0.0], [-1.0, 1.0]]], [[[1.0, -1.0], [-1.0, 1.0]]]])
_YB = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]], [[[1.0, 0.0], [1.0, 0.0]]]])
MONAI_CASES = [
    # shape: (1, 1, 2, 2), (1, 1, 2, 2)
    [{"include_background": True, "sigmoid": True, "smooth_nr": 1e-6, "smooth_dr": 1e-6}, _X1, _Y1],
    # shape: (2, 1, 2, 2), (2, 1, 2, 2)
    [{"include_background": True, "sigmoid": True, "smooth_nr": 1e-4, "smooth_dr": 1e-4}, _X2, _YB],
    # shape: (2, 2, 3), (2, 1, 3)
    [
        {"include_background": False, "to_onehot_y": True, "smooth_nr": 0, "smooth_dr": 0},
        torch.tensor([[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]),
        torch.tensor([[[0.0, 0.0, 1.0]], [[0.0, 1.0, 0.0]]]),
    ],
    # shape: (2, 2, 3), (2, 1, 3)
    [{"to_onehot_y": True, "sigmoid": True, "smooth_nr": 1e-4, "smooth_dr": 1e-4}, _X3, _Y3],
    [{"to_onehot_y": True, "sigmoid": True, "reduction": "none", "smooth_nr": 1e-4, "smooth_dr": 1e-4}, _X3, _Y3],
    [{"to_onehot_y": True, "softmax": True, "smooth_nr": 1e-4, "smooth_dr": 1e-4}, _X3, _Y3],
    [{"to_onehot_y": True, "softmax": True, "reduction": "sum", "smooth_nr": 1e-4, "smooth_dr": 1e-4}, _X3, _Y3],
    # shape: (1, 1, 2, 2), (1, 1, 2, 2)
    [{"sigmoid": True, "squared_pred": True}, _X1, _Y1],
    [{"sigmoid": True, "jaccard": True}, _X1, _Y1],
    # shape: (2, 1, 2, 2): tanh / log_softmax give values outside [0, 1] (see test_out_of_range_activation)
    [{"other_act": torch.tanh, "smooth_nr": 1e-4, "smooth_dr": 1e-4}, _X2, _YB],
    [
        {"to_onehot_y": True, "other_act": lambda x: torch.log_softmax(x, dim=1), "smooth_nr": 1e-4, "smooth_dr": 1e-4},
        _X3,
        _Y3,
    ],
    [{"other_act": torch.tanh, "smooth_nr": 1e-4, "smooth_dr": 1e-4, "batch": True}, _XB, _YB],
    [{"other_act": torch.tanh, "smooth_nr": 0, "smooth_dr": 1e-4, "batch": True}, _XB, _YB],
    [{"other_act": torch.tanh, "smooth_nr": 0, "smooth_dr": 1e-4, "batch": False}, _XB, _YB],
    [
        {
            "to_onehot_y": True,
            "other_act": lambda x: torch.log_softmax(x, dim=1),
            "smooth_nr": 1e-4,
            "smooth_dr": 1e-4,
            "weight": (0, 1),
        },
        _X3,
        _Y3,
    ],
    # ignore_index cases of MONAI's suite
    [
        {"to_onehot_y": True, "softmax": True, "ignore_index": 2},
        torch.log(torch.tensor([[[[0.8, 0.1], [0.1, 0.1]], [[0.1, 0.8], [0.1, 0.1]], [[0.1, 0.1], [0.8, 0.8]]]])),
        torch.tensor([[[[0, 1], [2, 2]]]]),
    ],
]


def _grid_cases() -> list:
    """A grid over DiceLoss's switches on hard labels, shape (2, 3, 5, 4) logits."""
    cases = []
    for act, onehot, bg, batch, sq, jac, red, w in itertools.product(
        ["sigmoid", "softmax"],
        [True, False],
        [True, False],
        [True, False],
        [True, False],
        [True, False],
        ["none", "mean", "sum"],
        [None, (0.5, 1.0, 2.0)],
    ):
        kw = {
            act: True,
            "to_onehot_y": onehot,
            "include_background": bg,
            "batch": batch,
            "squared_pred": sq,
            "jaccard": jac,
            "reduction": red,
        }
        if w is not None:
            kw["weight"] = w if bg else w[1:]
        cases.append(kw)
    return cases


def _hard(shape: tuple, onehot: bool, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=g)
    return labels.float() if onehot else one_hot(labels, num_classes=shape[1])


class TestMonaiEquivalence(unittest.TestCase):
    @parameterized.expand([[c, v] for c in range(len(MONAI_CASES)) for v in VARIANTS])
    def test_monai_suite_cases(self, case, variant):
        kwargs, x, y = MONAI_CASES[case]
        in_unit_interval = "other_act" not in kwargs  # Theorem 2 needs predictions in [0, 1]
        if not in_unit_interval and variant != "sdl":
            return
        self._compare(kwargs, x, y, variant)

    @parameterized.expand([[i, v] for i in range(len(_grid_cases())) for v in VARIANTS])
    def test_argument_grid(self, i, variant):
        kwargs = _grid_cases()[i]
        x = torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(i))
        y = _hard((2, 3, 5, 4), kwargs["to_onehot_y"], seed=1000 + i)
        self._compare(kwargs, x, y, variant)

    def _compare(self, kwargs, x, y, variant):
        x1 = x.clone().requires_grad_(True)
        x2 = x.clone().requires_grad_(True)
        expected = DiceLoss(**kwargs)(x1, y)
        result = DMLoss(variant=variant, **kwargs)(x2, y)
        self.assertEqual(result.shape, expected.shape)
        np.testing.assert_allclose(result.detach().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
        expected.sum().backward()
        result.sum().backward()
        np.testing.assert_allclose(x2.grad.numpy(), x1.grad.numpy(), rtol=1e-5, atol=1e-6)

    @parameterized.expand([[c] for c in range(len(MONAI_CASES))])
    def test_dml1_equals_monai_soft_label(self, case):
        # MONAI's soft_label=True implements DML1 (materialising |x - y|); values agree for predictions in [0, 1]
        # (with tanh/log_softmax MONAI takes norms |x|_1 = sum |x|, which is no longer sum x)
        kwargs, x, y = MONAI_CASES[case]
        if "other_act" in kwargs:
            return
        expected = DiceLoss(soft_label=True, **kwargs)(x, y)
        result = DMLoss(variant="dml1", **kwargs)(x, y)
        np.testing.assert_allclose(result.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)

    def test_soft_target_cases_of_monai_suite(self):
        # MONAI's soft-label cases: identical soft input and target
        x = torch.tensor([[[[0.3, 0.4], [0.7, 0.9]]], [[[1.0, 0.1], [0.5, 0.3]]]])
        kw = {"smooth_nr": 1e-4, "smooth_dr": 1e-4}
        np.testing.assert_allclose(DMLoss(variant="dml1", **kw)(x, x).item(), 0.0, atol=1e-7)
        np.testing.assert_allclose(DMLoss(variant="dml2", **kw)(x, x).item(), 0.0, atol=1e-7)
        np.testing.assert_allclose(
            DMLoss(variant="sdl", **kw)(x, x).item(), DiceLoss(soft_label=False, **kw)(x, x).item(), rtol=1e-5
        )

    @parameterized.expand([[c, v] for c in range(len(MONAI_CASES)) for v in ("dml1", "dml2")])
    def test_out_of_range_activation_is_refused(self, case, variant):
        # tanh / log_softmax leave [0, 1], where the semimetric is undefined: refuse, naming the range and the way out
        kwargs, x, y = MONAI_CASES[case]
        if "other_act" not in kwargs:
            return
        with self.assertRaisesRegex(ValueError, r"variant='dml\d'.*\[0, 1\].*other_act.*variant='sdl'"):
            DMLoss(variant=variant, **kwargs)(x, y)
        # the way out gives MONAI's value (sdl is compared on every case in test_monai_suite_cases)
        np.testing.assert_allclose(
            DMLoss(variant="sdl", **kwargs)(x, y).numpy(), DiceLoss(**kwargs)(x, y).numpy(), rtol=1e-5, atol=1e-6
        )

    def test_raw_scores_outside_unit_interval_are_refused(self):
        x = torch.tensor([[[0.5, 1.5, -0.2]]])
        y = torch.tensor([[[1.0, 1.0, 0.0]]])
        with self.assertRaisesRegex(ValueError, r"input \(no activation set\) ranges over \[-0.2, 1.5\]"):
            DMLoss()(x, y)
        # probabilities at the ends of [0, 1] are fine, and sigmoid/softmax outputs are never checked
        self.assertTrue(torch.isfinite(DMLoss()(torch.tensor([[[0.0, 1.0, 0.0]]]), y)))
        self.assertTrue(torch.isfinite(DMLoss(sigmoid=True)(x * 100, y)))


class TestHandComputed(unittest.TestCase):
    x = torch.tensor([0.9, 0.6, 0.2, 0.1]).reshape(1, 1, 4)
    y_soft = torch.tensor([1.0, 0.5, 0.0, 0.0]).reshape(1, 1, 4)
    y_hard = torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(1, 1, 4)

    # |x| = 1.8, |y| = 1.5, <x, y> = 1.2, |x - y| = 0.5, sum(min) = 1.4
    @parameterized.expand(
        [
            ["sdl", False, 1 - 2.4 / 3.3],  # 0.272727
            ["dml1", False, 0.5 / 3.3],  # 0.151515
            ["dml2", False, 0.5 / 2.9],  # 0.172414
        ]
    )
    def test_soft(self, variant, jaccard, expected):
        loss = DMLoss(variant=variant, jaccard=jaccard, smooth_nr=0, smooth_dr=0)
        np.testing.assert_allclose(loss(self.x, self.y_soft).item(), expected, rtol=1e-5)

    @parameterized.expand([[v] for v in VARIANTS])
    def test_hard(self, variant):
        # |x| = 1.8, |y| = 2, <x, y> = 1.5: Dice loss 1 - 3/3.8 = 0.210526, Jaccard 1 - 1.5/2.3 = 0.347826
        loss = DMLoss(variant=variant, smooth_nr=0, smooth_dr=0)
        np.testing.assert_allclose(loss(self.x, self.y_hard).item(), 0.210526, rtol=1e-5)
        jml = DMLoss(variant=variant, jaccard=True, smooth_nr=0, smooth_dr=0)
        np.testing.assert_allclose(jml(self.x, self.y_hard).item(), 0.347826, rtol=1e-5)

    def test_tversky_and_focal(self):
        # DML1 counts: TP = 1.4, FP = 0.4, FN = 0.1; alpha = 0.3, beta = 0.7: 1 - 2.8 / (2 * (1.4 + 0.12 + 0.07))
        expected = 1 - 2.8 / (2 * 1.59)
        loss = DMLoss(alpha=0.3, beta=0.7, smooth_nr=0, smooth_dr=0)
        np.testing.assert_allclose(loss(self.x, self.y_soft).item(), expected, rtol=1e-5)
        focal = DMLoss(alpha=0.3, beta=0.7, gamma=2.0, smooth_nr=0, smooth_dr=0)
        np.testing.assert_allclose(focal(self.x, self.y_soft).item(), expected**2, rtol=1e-5)

    def test_single_voxel_minimiser(self):
        grid = torch.linspace(0, 1, 101).reshape(101, 1, 1)
        y = torch.full_like(grid, 0.5)
        for variant in ("dml1", "dml2"):
            loss = DMLoss(variant=variant, reduction="none", smooth_nr=0, smooth_dr=0)(grid, y).flatten()
            self.assertAlmostEqual(loss[50].item(), 0.0, places=6)
            self.assertEqual(int(loss.argmin()), 50)
        sdl = DMLoss(variant="sdl", reduction="none", smooth_nr=0, smooth_dr=0)(grid, y).flatten()
        self.assertEqual(int(sdl.argmin()), 100)  # SDL pushes the prediction to 1
        self.assertGreater(sdl[50].item(), 0.3)  # 1 - 0.5 / 1.0 = 0.5 at the soft label itself


class TestProperties(unittest.TestCase):
    def setUp(self):
        g = torch.Generator().manual_seed(0)
        self.a, self.b, self.c = (torch.rand(4, 3, 6, 5, generator=g, dtype=torch.float64) for _ in range(3))

    def _f(self, variant, jaccard=False):
        return DMLoss(variant=variant, jaccard=jaccard, reduction="none", smooth_nr=0, smooth_dr=0)

    def test_semimetric(self):
        for variant in ("dml1", "dml2"):
            f = self._f(variant)
            np.testing.assert_allclose(f(self.a, self.a).numpy(), 0.0, atol=1e-12)
            np.testing.assert_allclose(f(self.a, self.b).numpy(), f(self.b, self.a).numpy(), rtol=1e-12)
            self.assertTrue(bool((f(self.a, self.b) > 0).all()))
            lhs = f(self.a, self.c)
            rhs = 2 * (f(self.a, self.b) + f(self.b, self.c))
            self.assertTrue(bool((lhs <= rhs + 1e-12).all()))

    def test_dml1_le_dml2(self):
        self.assertTrue(bool((self._f("dml1")(self.a, self.b) <= self._f("dml2")(self.a, self.b) + 1e-12).all()))

    def test_jaccard_relation(self):
        for variant in ("dml1", "dml2", "sdl"):
            dml = self._f(variant)(self.a, self.b)
            jml = self._f(variant, jaccard=True)(self.a, self.b)
            np.testing.assert_allclose(dml.numpy(), (jml / (2 - jml)).numpy(), rtol=1e-10)

    def test_sdl_not_reflexive(self):
        self.assertTrue(bool((self._f("sdl")(self.a, self.a) > 1e-3).all()))


def _direct_phi(x: torch.Tensor, y: torch.Tensor, phi: str, variant: str) -> torch.Tensor:
    """Eq. (3) of Tilborghs et al. with the DML numerator: an explicit loop over the subsets phi."""
    b, c = x.shape[:2]
    groups = {
        "I": [[(i, j)] for i in range(b) for j in range(c)],
        "BI": [[(i, j) for i in range(b)] for j in range(c)],
        "CI": [[(i, j) for j in range(c)] for i in range(b)],
        "BCI": [[(i, j) for i in range(b) for j in range(c)]],
    }[phi]
    losses = []
    for group in groups:
        xs = torch.cat([x[i, j].flatten() for i, j in group])
        ys = torch.cat([y[i, j].flatten() for i, j in group])
        diff = (xs - ys).abs().sum()
        if variant == "dml1":
            loss = 1 - ((xs + ys).sum() - diff) / (xs + ys).sum()
        else:
            loss = 1 - 2 * (xs * ys).sum() / (2 * (xs * ys).sum() + diff)
        losses.append(loss)
    return torch.stack(losses).mean()


class TestPhi(unittest.TestCase):
    @parameterized.expand([[p, v] for p in ("I", "BI", "CI", "BCI") for v in ("dml1", "dml2")])
    def test_direct_formula(self, phi, variant):
        g = torch.Generator().manual_seed(3)
        x, y = torch.rand(3, 2, 4, 4, generator=g), torch.rand(3, 2, 4, 4, generator=g)
        result = DMLoss(variant=variant, phi=phi, smooth_nr=0, smooth_dr=0)(x, y)
        np.testing.assert_allclose(result.item(), _direct_phi(x, y, phi, variant).item(), rtol=1e-5)

    def test_batch_alias(self):
        g = torch.Generator().manual_seed(4)
        x, y = torch.rand(3, 2, 4, 4, generator=g), torch.rand(3, 2, 4, 4, generator=g)
        np.testing.assert_allclose(DMLoss(batch=True)(x, y).item(), DMLoss(phi="BI")(x, y).item(), rtol=1e-7)
        with self.assertRaisesRegex(ValueError, "batch=True"):
            DMLoss(batch=True, phi="I")

    def test_none_shapes(self):
        x = torch.rand(3, 2, 4, 5)
        shapes = {"I": (3, 2, 1, 1), "BI": (2, 1, 1), "CI": (3, 1, 1, 1), "BCI": (1, 1, 1)}
        for phi, shape in shapes.items():
            self.assertEqual(tuple(DMLoss(phi=phi, reduction="none")(x, x).shape), shape)

    def test_empty_label_map(self):
        """Tilborghs et al. Sect. 2.2: with 'I' and a negligible epsilon an empty map gets a negligible gradient;
        'BI' (B > 1) and 'I' with the heuristic epsilon give it a real one."""
        logits = torch.full((2, 1, 8, 8), -1.0)
        y = torch.zeros(2, 1, 8, 8)
        y[0, 0, 2:6, 2:6] = 1.0  # image 0 has 16 foreground voxels, image 1 is empty

        def grad_on_empty(**kw):
            x = logits.clone().requires_grad_(True)
            DMLoss(sigmoid=True, **kw)(x, y).backward()
            return x.grad[1].abs().mean().item()

        g_i = grad_on_empty(phi="I", smooth_nr=1e-7, smooth_dr=1e-7)
        g_bi = grad_on_empty(phi="BI", smooth_nr=1e-7, smooth_dr=1e-7)
        g_eps = grad_on_empty(phi="I", smooth_nr=8.0, smooth_dr=8.0)  # E[sum y] = 16 / 2 images
        self.assertLess(g_i, 1e-6)
        self.assertGreater(g_bi, 1e3 * g_i)
        self.assertGreater(g_eps, 1e3 * g_i)

    def test_class_weights_in_pooled_domain(self):
        # CI with weights (0, 1): class 0 counts vanish, so it equals the 'I' loss of class 1 alone
        g = torch.Generator().manual_seed(5)
        x, y = torch.rand(2, 2, 4, 4, generator=g), torch.rand(2, 2, 4, 4, generator=g)
        weighted = DMLoss(phi="CI", weight=(0.0, 1.0), smooth_nr=0, smooth_dr=0)(x, y)
        alone = DMLoss(phi="I", smooth_nr=0, smooth_dr=0)(x[:, 1:], y[:, 1:])
        np.testing.assert_allclose(weighted.item(), alone.item(), rtol=1e-6)

    def test_per_class_epsilon(self):
        g = torch.Generator().manual_seed(6)
        x, y = torch.rand(2, 2, 4, 4, generator=g), torch.rand(2, 2, 4, 4, generator=g)
        per_class = DMLoss(smooth_nr=(1.0, 3.0), smooth_dr=(1.0, 3.0), reduction="none")(x, y).flatten()
        c0 = DMLoss(smooth_nr=1.0, smooth_dr=1.0, reduction="none")(x[:, :1], y[:, :1]).flatten()
        c1 = DMLoss(smooth_nr=3.0, smooth_dr=3.0, reduction="none")(x[:, 1:], y[:, 1:]).flatten()
        np.testing.assert_allclose(per_class.numpy(), torch.stack([c0, c1], 1).flatten().numpy(), rtol=1e-6)
        # CI sums the per-class epsilons
        pooled = DMLoss(phi="CI", smooth_nr=(1.0, 3.0), smooth_dr=(1.0, 3.0))(x, y)
        np.testing.assert_allclose(pooled.item(), DMLoss(phi="CI", smooth_nr=4.0, smooth_dr=4.0)(x, y).item())

    def test_present_classes(self):
        x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(7))
        y = torch.zeros(2, 3, 4, 4)
        y[:, 0] = 1.0
        y[0, 1, :2] = 1.0
        y[0, 0, :2] = 0.0  # class 2 absent everywhere, class 1 absent in image 1
        full = DMLoss(reduction="none")(x, y).reshape(2, 3)
        present = DMLoss(class_average="present")(x, y)
        np.testing.assert_allclose(present.item(), ((full[0, 0] + full[0, 1] + full[1, 0]) / 3).item(), rtol=1e-6)
        empty = DMLoss(class_average="present")(x, torch.zeros_like(x))
        self.assertEqual(empty.item(), 0.0)


class TestGradients(unittest.TestCase):
    @parameterized.expand(
        [[v, p, j, s] for v in VARIANTS for p in ("I", "BI", "CI", "BCI") for j in (False, True) for s in (False, True)]
    )
    def test_gradcheck(self, variant, phi, jaccard, squared):
        g = torch.Generator().manual_seed(11)
        x = torch.rand(2, 3, 3, 3, generator=g, dtype=torch.float64)
        y = torch.rand(2, 3, 3, 3, generator=g, dtype=torch.float64)
        y = torch.where((x - y).abs() < 0.05, (y + 0.3) % 1.0, y)  # stay away from the kinks x == y
        x.requires_grad_(True)
        y.requires_grad_(True)
        loss = DMLoss(variant=variant, phi=phi, jaccard=jaccard, squared_pred=squared, smooth_nr=1e-3, smooth_dr=1e-3)
        self.assertTrue(torch.autograd.gradcheck(loss, (x, y), eps=1e-6, atol=1e-6))

    def test_gradcheck_with_activation_and_focal(self):
        g = torch.Generator().manual_seed(12)
        x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
        y = torch.softmax(torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64), 1)
        loss = DMLoss(softmax=True, variant="dml2", gamma=1.5, alpha=0.3, beta=0.7, weight=(1.0, 2.0, 0.5))
        self.assertTrue(torch.autograd.gradcheck(lambda t: loss(t, y), (x,), eps=1e-6, atol=1e-6))

    def test_binary_ignore_sentinel(self):
        # a single-channel soft target with 255 marking unlabelled voxels: equal to the loss on the labelled ones
        x = torch.randn(1, 1, 2, 4)
        y = torch.tensor([[[[1.0, 0.5, 0.0, 1.0], [255, 255, 255, 255]]]])
        masked = DMLoss(sigmoid=True, ignore_index=255)(x, y)
        crop = DMLoss(sigmoid=True)(x[..., :1, :], y[..., :1, :])
        np.testing.assert_allclose(masked.item(), crop.item(), rtol=1e-6)

    def test_ignored_voxels_have_zero_gradient(self):
        x = torch.randn(1, 3, 4, 4, requires_grad=True)
        t = torch.tensor([[[0, 1, 0, 1], [1, 0, 1, 0], [2, 2, 2, 2], [2, 2, 2, 2]]]).unsqueeze(0)
        DMLoss(to_onehot_y=True, softmax=True, ignore_index=2)(x, t).backward()
        self.assertTrue(bool((x.grad[:, :, 2:] == 0).all()))
        self.assertTrue(bool((x.grad[:, :, :2] != 0).any()))

    def test_empty_prediction_and_label(self):
        x = torch.zeros(2, 2, 4, 4, requires_grad=True)
        for variant in VARIANTS:
            loss = DMLoss(variant=variant, smooth_nr=0, smooth_dr=0)(x, torch.zeros(2, 2, 4, 4))
            self.assertEqual(loss.item(), 0.0)  # defined as perfect agreement
            (g,) = torch.autograd.grad(loss, x)
            self.assertTrue(bool(torch.isfinite(g).all()))

    @parameterized.expand([[torch.float16], [torch.bfloat16]])
    def test_half_precision(self, dtype):
        g = torch.Generator().manual_seed(13)
        logits = torch.randn(2, 3, 32, 32, generator=g)
        y = torch.softmax(torch.randn(2, 3, 32, 32, generator=g), 1)
        for variant in VARIANTS:
            loss = DMLoss(softmax=True, variant=variant)
            ref = loss(logits, y)
            with torch.autocast("cpu", dtype=dtype):
                low = loss(logits.to(dtype), y.to(dtype))
            self.assertTrue(bool(torch.isfinite(low)))
            np.testing.assert_allclose(low.float().item(), ref.item(), atol=1e-3)


class TestErrors(unittest.TestCase):
    def test_shape_mismatch(self):
        with self.assertRaisesRegex(ValueError, r"same shape.*target \(1, 2, 3\) and input \(1, 3, 3\)"):
            DMLoss()(torch.rand(1, 3, 3), torch.rand(1, 2, 3))
        with self.assertRaisesRegex(ValueError, "dimensions"):
            DMLoss()(torch.rand(1, 3, 3), torch.rand(3, 3))

    def test_target_range(self):
        with self.assertRaisesRegex(ValueError, r"target must hold probabilities in \[0, 1\].*1\.5"):
            DMLoss()(torch.rand(1, 1, 4), torch.tensor([[[0.0, 1.5, 0.2, 0.1]]]))
        with self.assertRaisesRegex(ValueError, "target must hold probabilities"):
            DMLoss()(torch.rand(1, 1, 4), torch.tensor([[[0.0, -0.1, 0.2, 0.1]]]))

    def test_nan_inf(self):
        y = torch.rand(1, 2, 4)
        for bad in (float("nan"), float("inf")):
            t = y.clone()
            t[0, 0, 1] = bad
            with self.assertRaisesRegex(ValueError, "target contains NaN or Inf"):
                DMLoss()(torch.rand(1, 2, 4), t)
            x = torch.rand(1, 2, 4)
            x[0, 1, 2] = bad
            with self.assertRaisesRegex(ValueError, "input contains NaN or Inf"):
                DMLoss(softmax=bad != bad)(x, y)

    def test_onehot_errors(self):
        with self.assertRaisesRegex(ValueError, "single-channel integer target"):
            DMLoss(to_onehot_y=True)(torch.rand(1, 3, 4), torch.rand(1, 3, 4))
        with self.assertRaisesRegex(ValueError, r"integer label map in \[0, 2\]"):
            DMLoss(to_onehot_y=True)(torch.rand(1, 3, 4), torch.tensor([[[0, 1, 3, 2]]]))

    def test_options(self):
        with self.assertRaisesRegex(ValueError, "dml3"):
            DMLoss(variant="dml3")
        with self.assertRaisesRegex(ValueError, "IB"):
            DMLoss(phi="IB")
        with self.assertRaisesRegex(ValueError, "meen"):
            DMLoss(reduction="meen")
        with self.assertRaisesRegex(ValueError, "Incompatible"):
            DMLoss(sigmoid=True, softmax=True)
        with self.assertRaisesRegex(TypeError, "other_act"):
            DMLoss(other_act="tanh")
        with self.assertRaisesRegex(ValueError, "gamma"):
            DMLoss(gamma=0.5)
        with self.assertRaisesRegex(ValueError, "jaccard"):
            DMLoss(jaccard=True, alpha=0.3)
        with self.assertRaisesRegex(ValueError, "weight must be finite and no less than 0"):
            DMLoss(weight=(1.0, -1.0))

    def test_per_class_lengths(self):
        x = torch.rand(2, 3, 4)
        with self.assertRaisesRegex(ValueError, "weight has 2 values but the input has 3 classes"):
            DMLoss(weight=(1.0, 2.0))(x, x)
        with self.assertRaisesRegex(ValueError, "smooth_nr has 4 values but the input has 2 classes.*background"):
            DMLoss(smooth_nr=(1.0, 2.0, 3.0, 4.0), include_background=False)(x, x)

    def test_warnings(self):
        x = torch.rand(1, 1, 3)
        for kw in ({"include_background": False}, {"softmax": True}, {"to_onehot_y": True}):
            with self.assertWarns(Warning):
                DMLoss(**kw)(x, x)


class TestIntegration(unittest.TestCase):
    def test_soft_label_switch(self):
        self.assertEqual(DMLoss(soft_label=True).variant, "dml1")
        self.assertEqual(DMLoss(soft_label=False).variant, "sdl")
        self.assertEqual(DMLoss(soft_label=True, variant="dml2").variant, "dml2")
        with self.assertRaisesRegex(ValueError, "soft_label=False contradicts variant='dml1'"):
            DMLoss(soft_label=False, variant="dml1")
        x, y = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
        np.testing.assert_allclose(
            DMLoss(soft_label=True)(x, y).item(), DiceLoss(soft_label=True)(x, y).item(), rtol=1e-5
        )

    def test_config_parser(self):
        config = {"loss": {"_target_": "monai_dml.losses.DMLoss", "softmax": True, "variant": "dml2", "phi": "BI"}}
        loss = ConfigParser(config).get_parsed_content("loss")
        self.assertIsInstance(loss, DMLoss)
        self.assertEqual((loss.variant, loss.phi), ("dml2", "BI"))

    def test_buffers_follow_module(self):
        loss = DMLoss(weight=(1.0, 2.0), smooth_nr=(1.0, 2.0)).double()
        self.assertEqual(loss.class_weight.dtype, torch.float64)
        x = torch.rand(1, 2, 4, dtype=torch.float64)
        self.assertEqual(loss(x, x).dtype, torch.float64)


@pytest.mark.slow
class TestCompile(unittest.TestCase):
    def test_compiled_equals_eager(self):
        loss = DMLoss(softmax=True, variant="dml1")
        y = torch.softmax(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)), 1)
        x1 = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
        x2 = x1.detach().clone().requires_grad_(True)
        compiled = torch.compile(loss)(x1, y)
        eager = loss(x2, y)
        compiled.backward()
        eager.backward()
        np.testing.assert_allclose(compiled.item(), eager.item(), rtol=1e-5)
        np.testing.assert_allclose(x1.grad.numpy(), x2.grad.numpy(), rtol=1e-5, atol=1e-7)


if __name__ == "__main__":
    unittest.main()
