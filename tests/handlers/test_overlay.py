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
"""``OverlaySaver`` writes one PNG per case for the first cases of each epoch, named after the case."""

from __future__ import annotations

import os
import tempfile
import unittest
from unittest import mock

import torch
from ignite.engine import Engine
from monai.data import DataLoader, MetaTensor
from monai.engines import SupervisedEvaluator

from monai_dml.handlers import OverlaySaver, overlay as overlay_module
from monai_dml.visualize.figures import plot_overlay
from tests.pixels import colour_area, read_rgb, viridis


def _is_png(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def _fractions(path: str, *values: float) -> list[float]:
    """The share of each of ``values``' viridis colours among the pixels showing any of them in the PNG at ``path``
    (the values of one map panel: its pixels are split between them as its voxels are)."""
    rgb = read_rgb(path)
    areas = [colour_area(rgb, viridis(v)) for v in values]
    return [a / sum(areas) for a in areas]


def _rows_image(rows: int, size: int, high: float = 1.0, low: float = 0.0) -> torch.Tensor:
    """A ``(1, size, size)`` map: ``high`` on the first ``rows`` rows, ``low`` elsewhere."""
    out = torch.full((1, size, size), low)
    out[0, :rows] = high
    return out


def _evaluator(data: list[dict], network: torch.nn.Module, batch_size: int = 2) -> SupervisedEvaluator:
    loader = DataLoader(data, batch_size=batch_size, num_workers=0)
    return SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=loader, network=network)


class TestOverlaySaver(unittest.TestCase):
    def test_2d_evaluator_writes_first_cases_named_from_meta(self):
        # case i: image and soft label cover the first 2 + 2i rows; the network gives sigmoid(4 x - 2) there
        data = [
            {
                "image": MetaTensor(_rows_image(2 + 2 * i, 12), meta={"filename_or_obj": f"/data/case{i}.nii.gz"}),
                "label": _rows_image(2 + 2 * i, 12, high=0.7, low=0.2),
            }
            for i in range(5)
        ]
        network = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.Sigmoid())
        with torch.no_grad():
            network[0].weight.fill_(4.0)
            network[0].bias.fill_(-2.0)
        p_high, p_low = float(torch.sigmoid(torch.tensor(2.0))), float(torch.sigmoid(torch.tensor(-2.0)))
        with tempfile.TemporaryDirectory() as tmp:
            save_dir = os.path.join(tmp, "overlays")  # created by the handler
            evaluator = _evaluator(data, network)
            OverlaySaver(save_dir=save_dir, num_cases=3, filename="e{epoch}_{case}.png").attach(evaluator)
            evaluator.run()
            written = sorted(os.listdir(save_dir))
            self.assertEqual(written, ["e1_case0.png", "e1_case1.png", "e1_case2.png"])
            self.assertTrue(all(_is_png(os.path.join(save_dir, f)) for f in written))
            evaluator.run(global_epoch=2)  # a second epoch: the counter restarts
            self.assertEqual(len(os.listdir(save_dir)), 6)
            self.assertTrue(os.path.isfile(os.path.join(save_dir, "e2_case2.png")))
            for epoch in (1, 2):
                for i in range(3):  # each file shows its own case: the reference cut at 0.5, the probabilities
                    path = os.path.join(save_dir, f"e{epoch}_case{i}.png")
                    self.assertAlmostEqual(_fractions(path, 1.0, 0.0)[0], (2 + 2 * i) / 12, delta=0.03, msg=path)
                    self.assertAlmostEqual(_fractions(path, p_high, p_low)[0], (2 + 2 * i) / 12, delta=0.03, msg=path)
                    self.assertLess(sum(_fractions(path, 0.7, 0.2, 1.0, 0.0)[:2]), 0.01, msg=path)  # not the soft label

    def test_3d_evaluator_multichannel_case_key(self):
        g = torch.Generator().manual_seed(1)
        data = []
        for i in range(3):
            label = torch.zeros(2, 8, 8, 6)
            label[1, 2:6, 2:6, 4] = 1.0  # foreground only on slice 4
            label[0] = 1.0 - label[1]
            data.append({"image": torch.rand(2, 8, 8, 6, generator=g), "label": label, "case": f"pat {i}/a"})
        network = torch.nn.Sequential(torch.nn.Conv3d(2, 2, 1), torch.nn.Softmax(dim=1))
        with (
            tempfile.TemporaryDirectory() as tmp,
            mock.patch.object(overlay_module, "plot_overlay", wraps=plot_overlay) as plot,
        ):
            evaluator = _evaluator(data, network)
            OverlaySaver(save_dir=tmp, num_cases=10, case_key="case", image_channel=1).attach(evaluator)
            evaluator.run()
            written = sorted(os.listdir(tmp))
            self.assertEqual(written, [f"overlay_pat_{i}_a.png" for i in range(3)])  # min(num_cases, cases seen)
            self.assertTrue(all(_is_png(os.path.join(tmp, f)) for f in written))
            self.assertEqual(plot.call_count, 3)
            self.assertEqual(plot.call_args.kwargs["slice_index"], 4)  # the slice with the most reference foreground
            image = plot.call_args.args[0]
            self.assertEqual(tuple(image.shape), (1, 8, 8, 6))
            torch.testing.assert_close(image[0], data[2]["image"][1])  # the requested channel, not channel 0
            self.assertEqual(set(plot.call_args.kwargs["soft_label"].unique().tolist()), {0.0, 1.0})

    def test_plain_engine_batch_dict_meta_and_index_fallback(self):
        g = torch.Generator().manual_seed(2)

        def case(k):  # case k: soft label 0.6 on the first 2 + 2k rows (0.4 elsewhere), prediction 0.8 on 3 + k
            return _rows_image(2 + 2 * k, 10, 0.6, 0.4), _rows_image(3 + k, 10, 0.8, 0.3).transpose(1, 2)

        def batch(names):
            first = 0 if names is not None else 2
            labels, preds = zip(*(case(k) for k in (first, first + 1)), strict=True)
            out = {
                "image": torch.rand(2, 1, 10, 10, generator=g),
                "pred": torch.stack(preds),
                "label": torch.stack(labels),
            }
            if names is not None:
                out["image_meta_dict"] = {"filename_or_obj": names}
            return out

        batches = [batch(["/a/img.nii", "/b/img.nii"]), batch(None)]
        engine = Engine(lambda e, b: b)
        with tempfile.TemporaryDirectory() as tmp:
            OverlaySaver(save_dir=tmp).attach(engine)
            engine.run(batches, max_epochs=1)
            written = sorted(os.listdir(tmp))
            # a repeated name gets the case index; cases without meta data are named by their index
            self.assertEqual(written, ["overlay_2.png", "overlay_3.png", "overlay_img.png", "overlay_img_1.png"])
            self.assertTrue(all(_is_png(os.path.join(tmp, f)) for f in written))
            for k, name in enumerate(["overlay_img.png", "overlay_img_1.png", "overlay_2.png", "overlay_3.png"]):
                path = os.path.join(tmp, name)
                self.assertAlmostEqual(_fractions(path, 1.0, 0.0)[0], (2 + 2 * k) / 10, delta=0.03, msg=name)
                self.assertAlmostEqual(_fractions(path, 0.8, 0.3)[0], (3 + k) / 10, delta=0.03, msg=name)
                self.assertLess(sum(_fractions(path, 0.6, 0.4, 1.0, 0.0)[:2]), 0.01, msg=name)  # binarised reference

    def test_only_rank_zero_writes(self):
        engine = Engine(lambda e, b: b)
        batches = [{"image": torch.rand(1, 1, 8, 8), "pred": torch.rand(1, 1, 8, 8), "label": torch.rand(1, 1, 8, 8)}]
        with tempfile.TemporaryDirectory() as tmp, mock.patch.object(overlay_module.idist, "get_rank", return_value=1):
            save_dir = os.path.join(tmp, "overlays")
            OverlaySaver(save_dir=save_dir).attach(engine)
            engine.run(batches, max_epochs=1)
            self.assertFalse(os.path.exists(save_dir))

    def test_invalid_num_cases(self):
        with self.assertRaisesRegex(ValueError, "num_cases"):
            OverlaySaver(save_dir=".", num_cases=0)


if __name__ == "__main__":
    unittest.main()
