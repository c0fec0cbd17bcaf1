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

import os
import re
import subprocess
import sys
import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_dml.utils import (
    SIMPLEX_TOLERANCE,
    check_channel_sums,
    check_label_map,
    check_probability_map,
    check_rater_shapes,
    check_rater_stack,
    check_soft_target,
    one_hot_label_map,
)

NAN, INF = float("nan"), float("inf")


def _exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


# [values, name, hint, expected message]
SOFT_TARGET_ERRORS = [
    # shape: (1, 3)
    [
        [[0.0, 1.5, 0.2]],
        "y",
        "",
        "y must hold probabilities in [0, 1] (soft labels), got values in [0, 1.5] (shape (1, 3)).",
    ],
    [
        [[-0.25, 0.5]],
        "target",
        "Pass an integer map.",
        "target must hold probabilities in [0, 1] (soft labels), got values in [-0.25, 0.5] (shape (1, 2)). "
        "Pass an integer map.",
    ],
    [
        [[0.0, NAN]],
        "teacher",
        "",
        "teacher contains NaN or Inf values (shape (1, 2)); soft labels must be finite probabilities in [0, 1].",
    ],
    [
        [[INF, 0.0]],
        "teacher",
        "",
        "teacher contains NaN or Inf values (shape (1, 2)); soft labels must be finite probabilities in [0, 1].",
    ],
]

# [values, num_classes, expected message]; name "labels"
LABEL_MAP_ERRORS = [
    # shape: (1, 4)
    [
        [[0, 1, 3, 2]],
        3,
        "labels must be an integer label map in [0, 2] for num_classes=3, got values in [0, 3] (shape (1, 4)).",
    ],
    [
        [[-1, 0]],
        2,
        "labels must be an integer label map in [0, 1] for num_classes=2, got values in [-1, 0] (shape (1, 2)).",
    ],
    [
        [[0.0, 0.5]],
        2,
        "labels must be an integer label map in [0, 1] for num_classes=2, got values in [0, 0.5], not all whole "
        "numbers (shape (1, 2)).",
    ],
    [
        [[0.0, NAN]],
        2,
        "labels contains NaN or Inf values (shape (1, 2)); an integer label map must hold whole numbers.",
    ],
    [
        [[0.0, INF]],
        2,
        "labels contains NaN or Inf values (shape (1, 2)); an integer label map must hold whole numbers.",
    ],
]


class TestSoftTarget(unittest.TestCase):
    def test_valid(self):
        for t in (torch.tensor([0.0, 0.5, 1.0]), torch.tensor([True, False]), torch.tensor([0, 1]), torch.zeros(0)):
            check_soft_target(t)

    @parameterized.expand(SOFT_TARGET_ERRORS)
    def test_errors(self, values, name, hint, message):
        with self.assertRaisesRegex(ValueError, _exactly(message)):
            check_soft_target(torch.tensor(values), name, hint=hint)


class TestProbabilityMap(unittest.TestCase):
    def test_valid(self):
        # shape: (2, 3), channels on axis 0 sum to 1 within the tolerance
        check_probability_map(torch.tensor([[0.2, 1.0, 0.5], [0.8, 0.0, 0.5 + SIMPLEX_TOLERANCE / 2]]))
        # shape: (3, 2), rows (axis 1) sum to 1
        check_probability_map(torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]]), "rows", dim=1)
        # a single channel is a foreground probability: no sum rule
        check_probability_map(torch.tensor([[0.3, 0.9]]))
        self.assertEqual(SIMPLEX_TOLERANCE, 1e-3)

    def test_sums(self):
        # shape: (2, 2); channel sums 0.7 and 1.0
        probs = torch.tensor([[0.5, 0.4], [0.2, 0.6]])
        message = (
            "img channels must sum to 1 (a probability map, e.g. a softmax output), got channel sums over axis 0 in "
            "[0.7, 1] (shape (2, 2), tolerance 0.001)."
        )
        with self.assertRaisesRegex(ValueError, _exactly(message)):
            check_probability_map(probs)
        with self.assertRaisesRegex(ValueError, _exactly(message)):
            check_channel_sums(probs)
        # along axis 1 the sums are 0.9 and 0.8
        with self.assertRaisesRegex(ValueError, r"^y_pred channels must sum to 1 .* axis 1 in \[0.8, 0.9\]"):
            check_channel_sums(probs, "y_pred", dim=1)
        # a looser tolerance accepts 0.7
        check_channel_sums(probs, tolerance=0.31)

    def test_values_and_shape(self):
        with self.assertRaisesRegex(ValueError, _exactly(SOFT_TARGET_ERRORS[0][3].replace("y must", "img must"))):
            check_probability_map(torch.tensor([[0.0, 1.5, 0.2]]))
        message = (
            "probs must have a channel axis 0 and at least one more axis, e.g. channel-first (C, spatial...), "
            "got shape (3,)."
        )
        with self.assertRaisesRegex(ValueError, _exactly(message)):
            check_probability_map(torch.tensor([0.2, 0.3, 0.5]), "probs")


class TestLabelMap(unittest.TestCase):
    def test_valid(self):
        check_label_map(torch.tensor([[0, 2, 1]]), 3)
        check_label_map(torch.tensor([[0.0, 1.0]]), 2)
        check_label_map(torch.tensor([[True, False]]), 2)

    @parameterized.expand(LABEL_MAP_ERRORS)
    def test_errors(self, values, num_classes, message):
        with self.assertRaisesRegex(ValueError, _exactly(message)):
            check_label_map(torch.tensor(values), num_classes, "labels")

    def test_num_classes(self):
        for bad in (0, 1.5, True):
            with self.assertRaisesRegex(ValueError, _exactly(f"num_classes must be an integer >= 1, got {bad!r}.")):
                check_label_map(torch.zeros(1, 2), bad)

    def test_one_hot(self):
        # shape: (2, 1, 3) -> (2, 3, 3), by hand
        labels = torch.tensor([[[0, 2, 1]], [[1, 1, 0]]])
        expected = torch.tensor(
            [[[1, 0, 0], [0, 0, 1], [0, 1, 0]], [[0, 0, 1], [1, 1, 0], [0, 0, 0]]], dtype=torch.float32
        )
        out = one_hot_label_map(labels, 3)
        self.assertEqual(out.dtype, torch.float32)
        torch.testing.assert_close(out, expected)
        # channel-first without batch: (1, 3) -> (3, 3), float labels, float64 output
        out0 = one_hot_label_map(torch.tensor([[0.0, 2.0, 1.0]]), 3, dim=0, dtype=torch.float64)
        torch.testing.assert_close(out0, expected[0].double())

    def test_one_hot_errors(self):
        message = (
            "target must be a single-channel integer label map (size 1 on axis 1) for num_classes=3, got shape "
            "(1, 2, 3)."
        )
        with self.assertRaisesRegex(ValueError, _exactly(message)):
            one_hot_label_map(torch.zeros(1, 2, 3), 3)
        with self.assertRaisesRegex(ValueError, r"^img must be an integer label map in \[0, 1\] for num_classes=2"):
            one_hot_label_map(torch.tensor([[2, 0]]), 2, "img", dim=0)


class TestRaterStack(unittest.TestCase):
    def test_valid(self):
        check_rater_stack(torch.zeros(3, 4, 4))
        check_rater_stack(np.zeros((1, 2, 2, 2)))

    @parameterized.expand(
        [
            [
                (3, 4),
                "raters must have shape (R, H, W) or (R, H, W, D): R raters and 2 or 3 spatial dimensions, got shape "
                "(3, 4) (1 spatial dimensions).",
            ],
            [
                (2, 2, 2, 2, 2),
                "raters must have shape (R, H, W) or (R, H, W, D): R raters and 2 or 3 spatial dimensions, got shape "
                "(2, 2, 2, 2, 2) (4 spatial dimensions).",
            ],
            [(0, 4, 4), "raters must hold at least one rater (R >= 1), got R = 0 in shape (0, 4, 4)."],
            [(2, 0, 4), "raters must have at least one voxel, got shape (2, 0, 4)."],
        ]
    )
    def test_errors(self, shape, message):
        for stack in (torch.zeros(shape), np.zeros(shape)):
            with self.assertRaisesRegex(ValueError, _exactly(message)):
                check_rater_stack(stack)

    def test_shapes(self):
        check_rater_shapes([("a.nii", (4, 4)), ("b.nii", torch.Size([4, 4]))], "rater files")
        check_rater_shapes([], "rater files")
        message = "rater files have different shapes: c.nii has shape (4, 5) but a.nii has (4, 4)."
        with self.assertRaisesRegex(ValueError, _exactly(message)):
            check_rater_shapes([("a.nii", (4, 4)), ("b.nii", (4, 4)), ("c.nii", (4, 5))], "rater files")


class TestLayering(unittest.TestCase):
    def test_utils_and_upper_layers_do_not_import_losses(self):
        # a fresh interpreter: which monai_dml modules do utils, and then metrics/transforms/calibration/data, load?
        code = (
            "import sys, monai_dml.utils; u = 'monai_dml.utils'; "
            "print(sorted(m for m in sys.modules if m.startswith('monai_dml.') and not m.startswith(u)));"
            "import monai_dml.metrics, monai_dml.transforms, monai_dml.calibration, monai_dml.data; "
            "print(sorted(m for m in sys.modules if m.startswith('monai_dml.losses')))"
        )
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=root)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        self.assertEqual(out.stdout.split("\n")[:2], ["[]", "[]"])


if __name__ == "__main__":
    unittest.main()
