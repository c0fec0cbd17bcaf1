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

import re
import unittest

import numpy as np
import torch
from monai.utils import LossReduction, StrEnum
from parameterized import parameterized

from monai_dml.losses import DiceDomain, DMLoss, DMLVariant
from monai_dml.metrics import ECEMode, compute_ece
from monai_dml.transforms import FusionMethod, LabelSmoothing, LabelSmoothingMethod, RaterFusion
from monai_dml.utils import as_bool, look_up_option


class Colour(StrEnum):
    RED = "red"
    DARK_BLUE = "Dark-Blue"


# [value, supported, expected]
LOOKUP_CASES = [
    ["red", Colour, Colour.RED],
    ["RED", Colour, Colour.RED],
    ["  Red ", Colour, Colour.RED],
    [Colour.DARK_BLUE, Colour, Colour.DARK_BLUE],
    ["dark-blue", Colour, Colour.DARK_BLUE],
    ["bi", DiceDomain, DiceDomain.BI],
    ["Bci", DiceDomain, DiceDomain.BCI],
    ["DML2", DMLVariant, DMLVariant.DML2],
    ["Mean", LossReduction, LossReduction.MEAN],
    ["AXIAL", ("axial", "coronal"), "axial"],
    ["coronal", ["axial", "coronal"], "coronal"],
]

# [value, supported, name, the whole expected message]
LOOKUP_ERROR_CASES = [
    [
        "bx",
        DiceDomain,
        "phi",
        "Unsupported phi='bx'; phi must be one of ['I', 'BI', 'CI', 'BCI']. By 'bx', did you mean 'BI'?",
    ],
    [
        "meen",
        LossReduction,
        "reduction",
        "Unsupported reduction='meen'; reduction must be one of ['none', 'mean', 'sum']. "
        "By 'meen', did you mean 'mean'?",
    ],
    [
        "dml3",
        DMLVariant,
        "variant",
        "Unsupported variant='dml3'; variant must be one of ['dml1', 'dml2', 'sdl']. By 'dml3', did you mean 'dml1'?",
    ],
    # nothing alike: no hint
    ["zzz", Colour, "colour", "Unsupported colour='zzz'; colour must be one of ['red', 'Dark-Blue']."],
    # not a string: no hint
    [3, ("axial", "coronal"), "plane", "Unsupported plane=3; plane must be one of ['axial', 'coronal']."],
    [None, Colour, "colour", "Unsupported colour=None; colour must be one of ['red', 'Dark-Blue']."],
]


class TestLookUpOption(unittest.TestCase):
    @parameterized.expand(LOOKUP_CASES)
    def test_lookup(self, value, supported, expected):
        found = look_up_option(value, supported, "option")
        self.assertEqual(found, expected)
        self.assertIs(type(found), type(expected))

    @parameterized.expand(LOOKUP_ERROR_CASES)
    def test_errors(self, value, supported, name, message):
        with self.assertRaisesRegex(ValueError, f"^{re.escape(message)}$"):
            look_up_option(value, supported, name)

    def test_exact_match_wins_over_case(self):
        self.assertEqual(look_up_option("a", ("A", "a"), "x"), "a")
        with self.assertRaisesRegex(ValueError, "Unsupported x='b'"):
            look_up_option("b", ("A", "a"), "x")

    def test_string_is_not_a_sequence_of_options(self):
        with self.assertRaisesRegex(TypeError, "supported"):
            look_up_option("a", "abc", "x")


class TestOptionsInPackage(unittest.TestCase):
    def test_dmloss_phi_any_case(self):
        # shape: (2, 2, 3): logits and soft targets; "bi" and "BI" must be the same batch-pooled domain
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 2, 3, generator=g)
        y = torch.softmax(torch.randn(2, 2, 3, generator=g), dim=1)
        lower = DMLoss(softmax=True, phi="bi")
        upper = DMLoss(softmax=True, phi="BI")
        self.assertIs(lower.phi, DiceDomain.BI)
        np.testing.assert_allclose(lower(x, y).item(), upper(x, y).item(), rtol=1e-5)
        batch = DMLoss(softmax=True, batch=True)  # MONAI's batch=True is the same domain
        np.testing.assert_allclose(lower(x, y).item(), batch(x, y).item(), rtol=1e-5)
        self.assertEqual(DMLoss(variant="DML2", reduction="SUM").variant, DMLVariant.DML2)

    def test_dmloss_hints(self):
        with self.assertRaisesRegex(ValueError, r"phi='bx'.*did you mean 'BI'\?"):
            DMLoss(phi="bx")
        with self.assertRaisesRegex(ValueError, r"class_average='presnt'.*did you mean 'present'\?"):
            DMLoss(class_average="presnt")

    def test_transform_and_metric_options(self):
        self.assertIs(RaterFusion("Majority").method, FusionMethod.MAJORITY)
        self.assertIs(LabelSmoothing("SVLS").method, LabelSmoothingMethod.SVLS)
        with self.assertRaisesRegex(ValueError, r"method='unifrm'.*did you mean 'uniform'\?"):
            LabelSmoothing("unifrm")
        y = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]).reshape(1, 2, 2)  # shape: (1, 2, 2), one-hot
        np.testing.assert_allclose(compute_ece(y, y, mode="Top_Label"), compute_ece(y, y, mode=ECEMode.TOP_LABEL))


# [value, expected]
BOOL_CASES = [
    [True, True],
    [False, False],
    [np.bool_(True), True],
    [1, True],
    [0, False],
    [1.0, True],
    [0.0, False],
    [np.int64(1), True],
    ["true", True],
    ["FALSE", False],
    [" Yes ", True],
    ["no", False],
    ["On", True],
    ["off", False],
    ["1", True],
    ["0", False],
]


class TestAsBool(unittest.TestCase):
    @parameterized.expand(BOOL_CASES)
    def test_values(self, value, expected):
        self.assertIs(as_bool(value, "resume"), expected)

    @parameterized.expand([["maybe"], [2], [0.5], [""], [None], [[True]]])
    def test_errors(self, value):
        expected = f"resume must be true or false (also yes/no, on/off, 1/0), got {value!r}."
        with self.assertRaisesRegex(ValueError, f"^{re.escape(expected)}$"):
            as_bool(value, "resume")


if __name__ == "__main__":
    unittest.main()
