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
import tempfile
import unittest

import matplotlib
import numpy as np
import torch

from monai_dml.visualize import plot_overlay, plot_reliability_diagram

matplotlib.use("Agg")


def _png_ok(test: unittest.TestCase, path: str) -> None:
    from matplotlib.image import imread

    test.assertTrue(os.path.isfile(path))
    img = imread(path)
    test.assertGreater(img.shape[0], 50)
    test.assertGreater(img.shape[1], 50)
    test.assertGreater(float(np.std(img[..., :3])), 0.01)  # not a blank canvas


class TestFigures(unittest.TestCase):
    def test_reliability_diagram(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "sub", "reliability.png")
            conf = np.linspace(0.05, 0.95, 10)
            acc = conf - 0.1
            count = np.array([0, 5, 10, 20, 40, 80, 160, 320, 640, 1280])
            fig = plot_reliability_diagram(conf, acc, count, path=path)
            _png_ok(self, path)
            # ECE = sum of counts * 0.1 / total over non-empty bins = 10 %
            self.assertIn("ECE = 10.00 %", fig.axes[0].get_title())

    def test_overlay_2d_and_3d(self):
        g = torch.Generator().manual_seed(0)
        with tempfile.TemporaryDirectory() as tmp:
            raters = (torch.rand(3, 32, 32, generator=g) > 0.5).float()
            raters[:, 8:24, 8:24] = 1
            soft = raters.mean(0, keepdim=True)
            path = os.path.join(tmp, "overlay.png")
            plot_overlay(torch.rand(1, 32, 32, generator=g), raters, soft, soft * 0.9, path=path, title="case01")
            _png_ok(self, path)
            path3 = os.path.join(tmp, "overlay3d.png")
            vol = torch.zeros(1, 16, 16, 8)
            vol[0, 4:12, 4:12, 2:6] = 1
            plot_overlay(torch.rand(1, 16, 16, 8, generator=g), vol.repeat(2, 1, 1, 1), vol, path=path3)
            _png_ok(self, path3)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "equal"):
            plot_reliability_diagram([0.5], [0.5, 0.6], [1])
        with self.assertRaisesRegex(ValueError, "no voxel"):
            plot_reliability_diagram([0.5], [0.5], [0])
        with self.assertRaisesRegex(ValueError, "soft label has spatial shape"):
            plot_overlay(torch.rand(1, 8, 8), soft_label=torch.rand(1, 8, 9))
        with self.assertRaisesRegex(ValueError, "slice_index"):
            plot_overlay(torch.rand(1, 8, 8, 4), slice_index=9)
        with self.assertRaisesRegex(ValueError, "channel-first"):
            plot_overlay(torch.rand(8, 8))


if __name__ == "__main__":
    unittest.main()
