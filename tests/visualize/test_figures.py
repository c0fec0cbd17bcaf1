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
from matplotlib.colors import to_rgb
from parameterized import parameterized

from monai_dml.visualize import plot_overlay, plot_reliability_diagram
from tests.pixels import colour_area, colour_mask, read_rgb, viridis

matplotlib.use("Agg")


def _png_ok(test: unittest.TestCase, path: str) -> None:
    from matplotlib.image import imread

    test.assertTrue(os.path.isfile(path))
    img = imread(path)
    test.assertGreater(img.shape[0], 50)
    test.assertGreater(img.shape[1], 50)
    test.assertGreater(float(np.std(img[..., :3])), 0.01)  # not a blank canvas


def _bars(mask: np.ndarray, min_height: int) -> list[tuple[float, float]]:
    """The vertical bars of a colour mask: ``(centre column, height in pixels)`` of each run of adjacent columns
    holding at least ``min_height`` pixels of the colour, left to right."""
    heights = mask.sum(axis=0)
    columns = np.flatnonzero(heights >= min_height)
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1) if len(columns) else []
    return [(float(run.mean()), float(np.median(heights[run]))) for run in runs]


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

    @parameterized.expand([[0.2, 0.6, "28.33"], [0.4, 0.3, "41.67"]])
    def test_reliability_bars_follow_the_calibration(self, acc5, acc8, ece):
        # two filled bins: (0.5, 0.6] with 50 voxels at confidence 0.55, (0.8, 0.9] with 100 at 0.85
        conf, acc, count = np.full(10, np.nan), np.full(10, np.nan), np.zeros(10)
        conf[5], acc[5], count[5] = 0.55, acc5, 50
        conf[8], acc[8], count[8] = 0.85, acc8, 100
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "reliability.png")
            fig = plot_reliability_diagram(conf, acc, count, path=path)
            rgb = read_rgb(path)
        # ECE = (50 |acc5 - 0.55| + 100 |acc8 - 0.85|) / 150, worked out by hand
        self.assertIn(f"ECE = {ece} %", fig.axes[0].get_title())
        ax = fig.axes[0]
        accuracy_bars = _bars(colour_mask(rgb, to_rgb("tab:blue")), min_height=20)  # the legend's patch is lower
        self.assertEqual(len(accuracy_bars), 2)
        (x5, h5), (x8, h8) = accuracy_bars
        self.assertAlmostEqual(h5, acc5 * ax.bbox.height, delta=4)  # bar height: the bin's accuracy
        self.assertAlmostEqual(h8, acc8 * ax.bbox.height, delta=4)
        self.assertAlmostEqual(x8 - x5, (0.85 - 0.55) * ax.bbox.width, delta=2)  # bars at the bin centres
        # the gap to the confidence: red at 30 % opacity over the white background, from the accuracy up
        gap_colour = 0.7 * np.ones(3) + 0.3 * np.asarray(to_rgb("tab:red"))
        gap_bars = _bars(colour_mask(rgb, gap_colour), min_height=10)
        self.assertEqual(len(gap_bars), 2)
        self.assertAlmostEqual(gap_bars[0][1], abs(acc5 - 0.55) * ax.bbox.height, delta=4)
        self.assertAlmostEqual(gap_bars[1][1], abs(acc8 - 0.85) * ax.bbox.height, delta=4)
        count_bars = _bars(colour_mask(rgb, to_rgb("gray")), min_height=20)
        self.assertEqual(len(count_bars), 2)
        self.assertAlmostEqual(count_bars[1][1] / count_bars[0][1], 100 / 50, delta=0.1)  # linear count axis

    @parameterized.expand([[8], [24]])
    def test_overlay_panels_show_the_maps(self, rows):
        soft = torch.zeros(1, 32, 32)
        soft[0, 8:24, 8:24] = 1.0  # 256 foreground voxels
        prediction = torch.full((1, 32, 32), 0.25)
        prediction[0, :rows] = 0.75  # 32 * rows voxels at 0.75
        raters = torch.zeros(3, 32, 32)
        raters[0, 8:24, 8:24], raters[1, 6:20, 6:20], raters[2, 10:26, 4:28] = 1, 1, 1
        image = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(0))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "overlay.png")
            fig = plot_overlay(image, raters, soft, prediction, path=path)
            rgb = read_rgb(path)
        per_voxel = (fig.axes[1].bbox.width / 32) ** 2  # pixels of one voxel in a map panel
        for value, voxels in ((1.0, 256), (0.0, 768), (0.75, 32 * rows), (0.25, 32 * (32 - rows))):
            # the dashed 0.5 contour of the soft label and the colour bars move a few pixels
            self.assertAlmostEqual(colour_area(rgb, viridis(value)) / (voxels * per_voxel), 1.0, delta=0.1, msg=value)
        tab10 = matplotlib.colormaps["tab10"]
        for r in range(3):  # each rater's contour in its own colour, and no fourth one
            self.assertGreater(colour_area(rgb, tab10(r), tol=0.05), 20, r)
        self.assertEqual(colour_area(rgb, tab10(3), tol=0.05), 0)

    def test_overlay_3d_shows_the_requested_slice(self):
        volume = torch.zeros(1, 16, 16, 8)
        volume[0, 4:12, 4:12, 2:5] = 1  # 64 voxels on slices 2, 3 and 4
        image = torch.rand(1, 16, 16, 8, generator=torch.Generator().manual_seed(1))
        shown = {}
        with tempfile.TemporaryDirectory() as tmp:
            for index in (None, 2, 5, 7):  # None: the middle slice, 8 // 2 = 4
                path = os.path.join(tmp, f"{index}.png")
                fig = plot_overlay(image, soft_label=volume, path=path, slice_index=index)
                per_voxel = (fig.axes[1].bbox.width / 16) ** 2
                shown[index] = colour_area(read_rgb(path), viridis(1.0)) / per_voxel
        self.assertAlmostEqual(shown[None] / 64, 1.0, delta=0.1)
        self.assertAlmostEqual(shown[2] / 64, 1.0, delta=0.1)
        self.assertLess(shown[5], 3)  # an empty slice: the colour bar's top only
        self.assertLess(shown[7], 3)

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
