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
"""The fused logits path of DMLoss: the same values and gradients as activation-then-loss, in every option family,
with slabs, without a host read in backward, and its errors."""

from __future__ import annotations

import itertools
import unittest
from unittest import mock

import torch
from monai.losses import DiceLoss
from parameterized import parameterized

import monai_dml.losses.fused as fused
from monai_dml.losses import DMLoss

# one option per family on top of the defaults; every family is crossed with both activations
FAMILIES = [
    {},
    {"variant": "dml2"},
    {"variant": "sdl"},
    {"jaccard": True},
    {"alpha": 0.3, "beta": 0.7},
    {"gamma": 2.0},
    {"squared_pred": True},
    {"include_background": False},
    {"weight": [1.0, 2.0, 0.5]},
    {"phi": "BI"},
    {"phi": "CI"},
    {"phi": "BCI", "weight": [1.0, 2.0, 0.5]},
    {"smooth_nr": [0.0, 1.0, 2.0], "smooth_dr": [1.0, 1.0, 2.0]},
    {"class_average": "present"},
    {"reduction": "none"},
    {"reduction": "sum"},
]
CASES = [[f, a] for f, a in itertools.product(FAMILIES, ["softmax", "sigmoid"])]
# small slabs so that a 7 x 11 image is cut into several activation slabs and statistics runs, unaligned with C
SMALL_SLABS = {"IMAGE_ELEMENTS": 50, "SLAB_ELEMENTS": 40, "RUN_ELEMENTS": 14}


def _data(c: int = 3, dtype: torch.dtype = torch.float64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = 3 * torch.randn(2, c, 7, 11, generator=g, dtype=dtype)
    y = torch.softmax(torch.randn(2, c, 7, 11, generator=g, dtype=dtype), 1)
    y[1, :, :3] = 0.0  # a region with an all-empty target
    y[1, 0, :3] = 1.0
    return z, y


def _value_and_grad(loss: DMLoss, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = z.clone().requires_grad_(True)
    out = loss(z, y)
    # a non-uniform upstream gradient, so that reduction="none" is checked element by element
    (out * torch.arange(1, out.numel() + 1, dtype=out.dtype).reshape(out.shape)).sum().backward()
    assert z.grad is not None
    return out.detach(), z.grad


class TestFusedEqualsUnfused(unittest.TestCase):
    @parameterized.expand(CASES)
    def test_value_and_gradient(self, options, activation):
        z, y = _data()
        for slabs in ({"IMAGE_ELEMENTS": fused.IMAGE_ELEMENTS}, SMALL_SLABS):
            with mock.patch.multiple(fused, **slabs):
                a = _value_and_grad(DMLoss(**{activation: True}, **options), z, y)
            b = _value_and_grad(DMLoss(**{activation: True}, fused=False, **options), z, y)
            torch.testing.assert_close(a[0], b[0], rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(a[1], b[1], rtol=1e-12, atol=1e-12)

    @parameterized.expand([[2], [5]])
    def test_channels_and_batched_walk(self, channels):
        """Other channel counts, and the all-images-at-once walk that devices other than the CPU take."""
        z, y = _data(c=channels)
        expected = _value_and_grad(DMLoss(softmax=True, fused=False), z, y)
        for batched in (False, True):
            with mock.patch.multiple(fused, **SMALL_SLABS, DEVICE_RUN_ELEMENTS=20, _batched=lambda t, b=batched: b):
                got = _value_and_grad(DMLoss(softmax=True), z, y)
            torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-12)

    @parameterized.expand([[None], [0], [255]])
    def test_integer_labels_and_ignore_index(self, ignore_index):
        z, _ = _data()
        labels = torch.randint(0, 3, (2, 1, 7, 11), generator=torch.Generator().manual_seed(1)).double()
        if ignore_index is not None:
            labels[:, :, :2] = ignore_index
        options = {"softmax": True, "to_onehot_y": True, "ignore_index": ignore_index, "reduction": "none"}
        a = _value_and_grad(DMLoss(**options), z, labels)
        b = _value_and_grad(DMLoss(fused=False, **options), z, labels)
        torch.testing.assert_close(a[0], b[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(a[1], b[1], rtol=1e-12, atol=1e-12)

    def test_hard_labels_equal_monai_dice_loss(self):
        """On one-hot labels DML1 on logits is MONAI's soft Dice loss, value and gradient (float32, saturated too)."""
        g = torch.Generator().manual_seed(2)
        z = 4 * torch.randn(2, 3, 16, 16, generator=g)
        z[0, 0, :4] = 200.0  # probabilities exactly 1 and 0 in float32: ties p == y
        y = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 16, 16), generator=g), 3).permute(0, 3, 1, 2).float()
        y[0, :, :4] = torch.tensor([1.0, 0.0, 0.0]).reshape(3, 1, 1)
        ours = _value_and_grad(DMLoss(softmax=True), z, y)
        zz = z.clone().requires_grad_(True)
        DiceLoss(softmax=True)(zz, y).backward()
        torch.testing.assert_close(ours[0], DiceLoss(softmax=True)(z, y), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(ours[1], zz.grad, rtol=1e-5, atol=1e-9)

    def test_bfloat16_autocast(self):
        z, y = _data(dtype=torch.float32)
        for dtype in (torch.float32, torch.bfloat16):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                a = _value_and_grad(DMLoss(softmax=True), z.to(dtype), y)
                b = _value_and_grad(DMLoss(softmax=True, fused=False), z.to(dtype), y)
            self.assertEqual(a[1].dtype, dtype)
            torch.testing.assert_close(a[0], b[0], rtol=1e-3, atol=1e-4)
            torch.testing.assert_close(a[1].float(), b[1].float(), rtol=2e-2, atol=1e-5)


class TestGradcheck(unittest.TestCase):
    @parameterized.expand(
        [
            [{"softmax": True}],
            [{"softmax": True, "variant": "dml2", "include_background": False}],
            [{"softmax": True, "squared_pred": True, "phi": "BI"}],
            [{"softmax": True, "variant": "sdl", "gamma": 2.0, "jaccard": True}],
            [{"sigmoid": True, "reduction": "none"}],
            [{"sigmoid": True, "variant": "dml2", "weight": [1.0, 2.0, 3.0], "phi": "CI"}],
        ]
    )
    def test_gradcheck(self, options):
        z, y = _data()
        z = z[:, :, :3, :4].contiguous().requires_grad_(True)
        y = y[:, :, :3, :4].contiguous()
        loss = DMLoss(**options)
        with mock.patch.multiple(fused, IMAGE_ELEMENTS=10, SLAB_ELEMENTS=9, RUN_ELEMENTS=3):
            self.assertTrue(torch.autograd.gradcheck(lambda t: loss(t, y), (z,), eps=1e-6, atol=1e-7))


class TestBackwardSemantics(unittest.TestCase):
    def test_probabilities_are_not_stored_beside_the_logits(self):
        """The graph keeps one logits-sized buffer (the future gradient) and the target, not the logits."""
        z, y = _data(dtype=torch.float32)
        z.requires_grad_(True)
        loss = DMLoss(softmax=True)(z, y)
        node = loss.grad_fn
        while node is not None and "FusedOverlapSums" not in type(node).__name__:
            node = node.next_functions[0][0]
        assert node is not None
        saved = [t for t in node.saved_tensors if t is not None]
        self.assertEqual([t.data_ptr() for t in saved], [y.data_ptr()])  # the target only, as a view
        self.assertEqual(tuple(node.probs.shape), (2, 3, 77))
        ref = torch.softmax(z.detach(), 1).reshape(2, 3, 77)
        torch.testing.assert_close(node.probs, ref)

    def test_retained_graph_backward_twice(self):
        """retain_graph=True keeps the probabilities for the next backward; intermediate logits need not live on."""
        z, y = _data()
        leaf = z.clone().requires_grad_(True)
        loss = DMLoss(softmax=True)(leaf / 2.0, y)  # the logits are an intermediate, freed after forward
        (g1,) = torch.autograd.grad(loss, leaf, retain_graph=True)
        (g2,) = torch.autograd.grad(loss, leaf, retain_graph=True)
        (g3,) = torch.autograd.grad(loss, leaf)
        expected = _value_and_grad(DMLoss(softmax=True, fused=False), z / 2.0, y)[1] / 2.0
        for g in (g1, g2, g3):
            torch.testing.assert_close(g, expected, rtol=1e-12, atol=1e-12)
        with self.assertRaisesRegex(RuntimeError, "second time"):
            torch.autograd.grad(loss, leaf)

    def test_gradient_is_the_kept_buffer(self):
        """Without retain_graph the returned gradient is the forward's probability buffer (no new allocation)."""
        z, y = _data()
        logits = z.clone().requires_grad_(True)
        loss = DMLoss(softmax=True)(logits, y)
        node = loss.grad_fn
        while "FusedOverlapSums" not in type(node).__name__:
            node = node.next_functions[0][0]
        pointer = node.probs.data_ptr()
        loss.backward()
        self.assertEqual(logits.grad.data_ptr(), pointer)  # the leaf's .grad took the buffer over

    def test_no_host_read_in_backward_and_one_in_forward(self):
        reads: list[str] = []

        class Spy(torch.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                name = getattr(func, "__name__", "")
                if name in ("item", "tolist", "__bool__", "__float__", "__int__", "nonzero", "any", "all"):
                    if name in ("any", "all") and not kwargs and len(args) == 1:
                        pass  # a tensor reduction, not a read (the read would be its __bool__)
                    else:
                        reads.append(name)
                return func(*args, **(kwargs or {}))

        z, y = _data(dtype=torch.float32)
        z.requires_grad_(True)
        for validate, expected in ((True, 1), (False, 0)):
            loss_fn = DMLoss(softmax=True, validate=validate)
            reads.clear()
            with Spy():
                loss = loss_fn(z, y)
            self.assertEqual(len(reads), expected, reads)
            reads.clear()
            with Spy():
                loss.backward()
            self.assertEqual(reads, [])

    def test_no_gradient_needed(self):
        z, y = _data()
        with torch.no_grad():
            value = DMLoss(softmax=True)(z, y)
        torch.testing.assert_close(value, DMLoss(softmax=True, fused=False)(z, y), rtol=1e-12, atol=1e-12)

    def test_target_with_gradient_takes_the_unfused_path(self):
        z, y = _data()
        y = y.clone().requires_grad_(True)
        DMLoss(softmax=True)(z, y).backward()
        self.assertIsNotNone(y.grad)


class TestFusedErrors(unittest.TestCase):
    def test_target_out_of_range(self):
        z, y = _data()
        with self.assertRaisesRegex(ValueError, r"target must hold probabilities in \[0, 1\].*\[0, 1.5\]"):
            DMLoss(softmax=True)(z, y * 1.5 + 0.0 * y.clamp(max=0))
        with self.assertRaisesRegex(ValueError, "target contains NaN"):
            DMLoss(sigmoid=True)(z, torch.where(y > 0.9, torch.nan, y))

    def test_logits_not_finite(self):
        z, y = _data()
        z[0, 1, 2, 3] = torch.inf
        with self.assertRaisesRegex(ValueError, r"input contains NaN or Inf values \(after the activation\)"):
            DMLoss(softmax=True)(z, y)

    def test_fused_overlap_sums_checks_its_arguments(self):
        z, y = _data()
        with self.assertRaisesRegex(ValueError, r"target must have shape \(2, 3, 7, 11\)"):
            fused.fused_overlap_sums(z, y[..., :10], "softmax")
        with self.assertRaisesRegex(ValueError, r"target must have shape \(2, 2, 7, 11\)"):
            fused.fused_overlap_sums(z, y, "softmax", first=1)
        with self.assertRaisesRegex(ValueError, "mask must have shape"):
            fused.fused_overlap_sums(z, y, "softmax", mask=torch.ones(2, 3, 7, 11))
        with self.assertRaisesRegex(ValueError, "activation"):
            fused.fused_overlap_sums(z, y, "tanh")

    def test_validate_false_skips_the_value_checks(self):
        z, y = _data()
        # a wrong but finite number instead of an error: the documented trade of validate=False
        self.assertTrue(torch.isfinite(DMLoss(softmax=True, validate=False)(z, 1.5 * y)))
        with self.assertRaisesRegex(ValueError, "same shape"):
            DMLoss(softmax=True, validate=False)(z, y[:, :2])


if __name__ == "__main__":
    unittest.main()
