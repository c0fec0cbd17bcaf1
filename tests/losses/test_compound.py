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

import unittest

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.networks import one_hot
from parameterized import parameterized

from monai_dml.losses import DMLCELoss, DMLoss

# DiceCELoss arguments; with lambda_ce = lambda_dml = 1 and hard labels every variant equals MONAI's value
DICECE_CASES = [
    [{"to_onehot_y": True, "softmax": True}, (2, 3, 6, 6)],
    [{"to_onehot_y": True, "softmax": True, "include_background": False, "weight": (1.0, 2.0, 0.5)}, (2, 3, 6, 6)],
    [{"to_onehot_y": True, "softmax": True, "batch": True, "jaccard": True, "reduction": "sum"}, (2, 3, 6, 6)],
    [{"to_onehot_y": True, "softmax": True, "squared_pred": True, "label_smoothing": 0.1}, (2, 3, 6, 6)],
    [{"sigmoid": True}, (2, 1, 6, 6)],
    [{"sigmoid": True, "weight": (2.0,)}, (2, 1, 6, 6)],
]


class TestDMLCELoss(unittest.TestCase):
    @parameterized.expand([[i, v] for i in range(len(DICECE_CASES)) for v in ("sdl", "dml1", "dml2")])
    def test_equals_monai_on_hard_labels(self, i, variant):
        kwargs, shape = DICECE_CASES[i]
        g = torch.Generator().manual_seed(i)
        x = torch.randn(*shape, generator=g)
        if kwargs.get("to_onehot_y"):
            y = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=g).float()
        else:
            y = torch.randint(0, 2, shape, generator=g).float()
        monai_kwargs = dict(kwargs)
        if "weight" in monai_kwargs:
            monai_kwargs["weight"] = torch.tensor(monai_kwargs["weight"])
        expected = DiceCELoss(**monai_kwargs)(x, y)
        result = DMLCELoss(lambda_ce=1.0, lambda_dice=1.0, variant=variant, **kwargs)(x, y)
        np.testing.assert_allclose(result.item(), expected.item(), rtol=1e-5)

    def test_soft_target_ce_is_kl_plus_entropy(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(2, 3, 4, 4, generator=g)
        y = torch.softmax(torch.randn(2, 3, 4, 4, generator=g), 1)
        p = torch.softmax(x, 1)
        kl = (y * (y.log() - p.log())).sum(1).mean()
        entropy = -(y * y.log()).sum(1).mean()
        ce_only = DMLCELoss(softmax=True, lambda_ce=1.0, lambda_dml=0.0)(x, y)
        np.testing.assert_allclose(ce_only.item(), (kl + entropy).item(), rtol=1e-5)

    def test_default_weights(self):
        g = torch.Generator().manual_seed(2)
        x = torch.randn(2, 3, 4, 4, generator=g)
        y = torch.softmax(torch.randn(2, 3, 4, 4, generator=g), 1)
        ce = -(y * torch.log_softmax(x, 1)).sum(1).mean()
        dml = DMLoss(softmax=True)(x, y)
        np.testing.assert_allclose(DMLCELoss(softmax=True)(x, y).item(), (0.25 * ce + 0.75 * dml).item(), rtol=1e-5)

    def test_minimum_at_soft_label(self):
        # both terms are minimised where the predicted probabilities equal the soft label (DML has a kink there,
        # so compare values around it rather than a gradient)
        y = torch.tensor([[[0.2, 0.7, 0.5]], [[0.9, 0.1, 0.4]]]).reshape(2, 1, 3)
        loss = DMLCELoss(sigmoid=True, smooth_nr=0, smooth_dr=0)
        at_label = loss(torch.logit(y), y).item()
        g = torch.Generator().manual_seed(4)
        for _ in range(20):
            shifted = torch.logit(y) + 0.3 * torch.randn(y.shape, generator=g)
            self.assertGreater(loss(shifted, y).item(), at_label)

    def test_ignore_index_soft_and_index_targets_agree(self):
        g = torch.Generator().manual_seed(3)
        x = torch.randn(1, 3, 4, 4, generator=g)
        idx = torch.randint(0, 3, (1, 1, 4, 4), generator=g)
        a = DMLCELoss(softmax=True, to_onehot_y=True, ignore_index=1)(x, idx)
        b = DMLCELoss(softmax=True, ignore_index=1)(x, one_hot(idx, num_classes=3))
        np.testing.assert_allclose(a.item(), b.item(), rtol=1e-5)

    def test_binary_ignore_index(self):
        g = torch.Generator().manual_seed(5)
        x = torch.randn(1, 1, 2, 4, generator=g)
        y = torch.tensor([[[[1.0, 0.0, 1.0, 0.0], [255, 255, 255, 255]]]])
        masked = DMLCELoss(sigmoid=True, ignore_index=255)(x, y)
        crop = DMLCELoss(sigmoid=True)(x[..., :1, :], y[..., :1, :])
        np.testing.assert_allclose(masked.item(), crop.item(), rtol=1e-5)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "lambda_ce"):
            DMLCELoss(lambda_ce=-1.0)
        with self.assertRaisesRegex(ValueError, "alias"):
            DMLCELoss(lambda_dml=0.5, lambda_dice=0.5)
        with self.assertRaisesRegex(ValueError, "label_smoothing"):
            DMLCELoss(label_smoothing=1.5)
        with self.assertRaisesRegex(ValueError, "none"):
            DMLCELoss(reduction="none")
        with self.assertRaisesRegex(ValueError, "dimensions"):
            DMLCELoss()(torch.rand(1, 2, 4), torch.rand(2, 4))
        with self.assertRaisesRegex(ValueError, "number of channels"):
            DMLCELoss()(torch.rand(1, 3, 4), torch.rand(1, 2, 4))
        with self.assertRaisesRegex(ValueError, r"target must hold probabilities in \[0, 1\]"):
            DMLCELoss(softmax=True)(torch.rand(1, 2, 4), torch.full((1, 2, 4), 1.5))


if __name__ == "__main__":
    unittest.main()
