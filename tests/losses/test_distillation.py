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
import torch.nn.functional as F
from parameterized import parameterized

from monai_dml.losses import DMLCELoss, DMLoss, KDLoss, temper_probabilities


class TestKDLoss(unittest.TestCase):
    @parameterized.expand([[1.0], [2.0], [0.5]])
    def test_equals_sum_of_parts(self, temperature):
        g = torch.Generator().manual_seed(0)
        s = torch.randn(2, 3, 6, 6, generator=g)
        label = torch.randint(0, 3, (2, 1, 6, 6), generator=g)
        teacher = torch.softmax(torch.randn(2, 3, 6, 6, generator=g), 1)
        loss = KDLoss(temperature=temperature, softmax=True, to_onehot_y=True)(s, label, teacher)
        # independent parts: q_T = softmax(log p / T); CE to a soft target = -sum q log softmax(s / T)
        q = torch.softmax(torch.log(teacher) / temperature, 1)
        ce_t = -(q * torch.log_softmax(s / temperature, 1)).sum(1).mean()
        dml_t = DMLoss(softmax=True)(s / temperature, q)
        label_term = DMLCELoss(softmax=True, to_onehot_y=True)(s, label)
        expected = 0.5 * label_term + 0.5 * (0.25 * temperature**2 * ce_t + 0.75 * dml_t)
        np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-5)

    @parameterized.expand([[("ce",)], [("dml",)], ["dml"]])
    def test_teacher_terms(self, terms):
        g = torch.Generator().manual_seed(4)
        s = torch.randn(2, 3, 6, 6, generator=g)
        label = torch.randint(0, 3, (2, 1, 6, 6), generator=g)
        teacher = torch.softmax(torch.randn(2, 3, 6, 6, generator=g), 1)
        loss = KDLoss(temperature=2.0, softmax=True, to_onehot_y=True, teacher_terms=terms)(s, label, teacher)
        q = torch.softmax(torch.log(teacher) / 2.0, 1)
        parts = {
            "ce": 0.25 * 4.0 * -(q * torch.log_softmax(s / 2.0, 1)).sum(1).mean(),
            "dml": 0.75 * DMLoss(softmax=True)(s / 2.0, q),
        }
        kept = {terms} if isinstance(terms, str) else set(terms)
        label_term = DMLCELoss(softmax=True, to_onehot_y=True)(s, label)  # the label term keeps both parts
        expected = 0.5 * label_term + 0.5 * sum(parts[k] for k in kept)
        np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-5)

    def test_binary(self):
        g = torch.Generator().manual_seed(1)
        s = torch.randn(2, 1, 5, 5, generator=g)
        label = (torch.rand(2, 1, 5, 5, generator=g) > 0.5).float()
        teacher = torch.rand(2, 1, 5, 5, generator=g)
        loss = KDLoss(sigmoid=True, label_weight=0.0, teacher_weight=1.0)(s, label, teacher)
        expected = 0.25 * F.binary_cross_entropy_with_logits(s, teacher) + 0.75 * DMLoss(sigmoid=True)(s, teacher)
        np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-5)

    def test_label_smoothing_only_on_the_label(self):
        g = torch.Generator().manual_seed(3)
        s = torch.randn(1, 3, 4, 4, generator=g)
        teacher = torch.softmax(torch.randn(1, 3, 4, 4, generator=g), 1)
        only_teacher = KDLoss(softmax=True, label_weight=0.0, teacher_weight=1.0, label_smoothing=0.2)(
            s, teacher, teacher
        )
        plain = KDLoss(softmax=True, label_weight=0.0, teacher_weight=1.0)(s, teacher, teacher)
        np.testing.assert_allclose(only_teacher.item(), plain.item(), rtol=1e-6)

    def test_gradcheck(self):
        g = torch.Generator().manual_seed(2)
        s = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
        label = torch.softmax(torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64), 1)
        teacher = torch.softmax(torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64), 1)
        loss = KDLoss(temperature=2.0, softmax=True, variant="dml1")
        self.assertTrue(torch.autograd.gradcheck(lambda t: loss(t, label, teacher), (s,), eps=1e-6, atol=1e-6))

    def test_teacher_is_not_trained(self):
        s = torch.randn(1, 2, 4, 4, requires_grad=True)
        teacher = torch.softmax(torch.randn(1, 2, 4, 4), 1).requires_grad_(True)
        KDLoss(softmax=True)(s, torch.softmax(torch.randn(1, 2, 4, 4), 1), teacher).backward()
        self.assertIsNone(teacher.grad)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "temperature"):
            KDLoss(temperature=0.0)
        with self.assertRaisesRegex(ValueError, "teacher_weight"):
            KDLoss(teacher_weight=-1.0)
        for terms in ((), ("ce", "kl")):
            with self.assertRaisesRegex(ValueError, "teacher_terms"):
                KDLoss(teacher_terms=terms)
        s = torch.randn(1, 2, 4)
        with self.assertRaisesRegex(ValueError, "teacher must have the shape"):
            KDLoss(softmax=True)(s, torch.rand(1, 2, 4), torch.rand(1, 3, 4))
        with self.assertRaisesRegex(ValueError, "teacher must hold probabilities"):
            KDLoss(softmax=True)(s, torch.rand(1, 2, 4), torch.full((1, 2, 4), 1.5))


class TestTemper(unittest.TestCase):
    def test_values(self):
        p = torch.tensor([[0.25, 0.5], [0.75, 0.5]])
        np.testing.assert_allclose(temper_probabilities(p, 0.5).numpy(), [[0.1, 0.5], [0.9, 0.5]], rtol=1e-6)
        self.assertIs(temper_probabilities(p, 1.0), p)
        np.testing.assert_allclose(temper_probabilities(torch.tensor([[0.2]]), 0.5).numpy(), [[0.04 / 0.68]])


if __name__ == "__main__":
    unittest.main()
