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
from monai.transforms import Lambdad

from monai_dml.transforms import RaterFusiond, estimate_epsilon_from_datalist


class TestEstimateEpsilonFromDatalist(unittest.TestCase):
    def test_fused_raters(self):
        # case 0: raters mark 2, 2 and 4 voxels -> uniform soft volume 8/3; case 1: nothing -> 0; mean 4/3
        r0 = torch.zeros(3, 4, 4)
        r0[0, 0, :2] = r0[1, 0, :2] = 1
        r0[2, 0, :4] = 1
        datalist = [{"raters": r0}, {"raters": torch.zeros(3, 4, 4)}]
        transform = RaterFusiond("raters", output_key="label", method="uniform")
        eps = estimate_epsilon_from_datalist(datalist, transform, progress=False)
        np.testing.assert_allclose(eps.numpy(), [4 / 3], rtol=1e-6)

    def test_integer_maps(self):
        datalist = [{"label": np.array([[[0, 1], [2, 2]]])}, {"label": np.array([[[1, 1], [0, 0]]])}]
        eps = estimate_epsilon_from_datalist(datalist, num_classes=3, include_background=False, progress=False)
        np.testing.assert_allclose(eps.numpy(), [1.5, 1.0])

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "datalist is empty"):
            estimate_epsilon_from_datalist([])
        bad = Lambdad("label", lambda x: x * 5)
        with self.assertRaisesRegex(ValueError, "probabilities"):
            estimate_epsilon_from_datalist([{"label": torch.ones(1, 2, 2)}], bad, progress=False)
        with self.assertRaisesRegex(ValueError, "datalist entry 0"):
            estimate_epsilon_from_datalist([{"image": 1}], Lambdad("label", lambda x: x), progress=False)


if __name__ == "__main__":
    unittest.main()
