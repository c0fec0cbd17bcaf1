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
"""The package's metrics plug into MONAI's ignite handlers unchanged: console, TensorBoard-ready engine state, and a
per-case CSV through ``MetricsSaver`` — the wiring every bundle uses."""

from __future__ import annotations

import csv
import os
import tempfile
import unittest

import torch
from ignite.engine import Engine
from monai.handlers import IgniteMetricHandler, MetricsSaver, from_engine

from monai_dml.handlers import ReliabilityDiagramSaver
from monai_dml.metrics import BinarizedDiceMetric, ECEMetric, SoftDiceMetric, VolumeBiasMetric


class TestMetricLogging(unittest.TestCase):
    def test_evaluator_logs_metrics_and_per_case_csv(self):
        g = torch.Generator().manual_seed(0)
        batches = [
            {
                "pred": torch.rand(2, 1, 8, 8, generator=g),
                "label": torch.rand(2, 1, 8, 8, generator=g),
                "image_meta_dict": {"filename_or_obj": [f"case{2 * i}", f"case{2 * i + 1}"]},
            }
            for i in range(3)
        ]
        engine = Engine(lambda e, batch: batch)
        metrics = {"soft_dice": SoftDiceMetric(), "bdice": BinarizedDiceMetric(), "volume_bias": VolumeBiasMetric()}
        for name, metric in metrics.items():
            IgniteMetricHandler(
                metric_fn=metric, output_transform=from_engine(["pred", "label"]), save_details=True
            ).attach(engine, name)
        with tempfile.TemporaryDirectory() as tmp:
            MetricsSaver(
                save_dir=tmp, metrics="*", metric_details="*", batch_transform=lambda b: b["image_meta_dict"]
            ).attach(engine)
            engine.run(batches, max_epochs=1)
            expected = SoftDiceMetric()(
                torch.cat([b["pred"] for b in batches]), torch.cat([b["label"] for b in batches])
            ).mean()
            self.assertAlmostEqual(engine.state.metrics["soft_dice"], float(expected), places=5)
            for name in metrics:
                with open(os.path.join(tmp, f"{name}_raw.csv")) as f:
                    rows = list(csv.reader(f, delimiter=","))
                self.assertEqual(len(rows), 1 + 6)  # header + one row per case
                self.assertEqual(rows[1][0], "case0")
            self.assertTrue(os.path.isfile(os.path.join(tmp, "metrics.csv")))

    def test_reliability_diagram_saver(self):
        g = torch.Generator().manual_seed(1)
        batches = []
        for _ in range(3):
            p = torch.rand(2, 1, 16, 16, generator=g)
            batches.append({"pred": p, "label": (torch.rand(2, 1, 16, 16, generator=g) < p).float()})
        engine = Engine(lambda e, batch: batch)
        with tempfile.TemporaryDirectory() as tmp:
            saver = ReliabilityDiagramSaver(save_dir=tmp, filename="rel_{epoch}.png")
            saver.attach(engine)
            engine.run(batches, max_epochs=1)
            path = os.path.join(tmp, "rel_1.png")
            self.assertTrue(os.path.isfile(path) and os.path.getsize(path) > 1000)
            # the diagram's bins are exactly those of an ECEMetric over the same data
            ref = ECEMetric()
            for b in batches:
                ref(b["pred"], b["label"])
            torch.testing.assert_close(saver.metric.aggregate_pooled(), ref.aggregate_pooled())


if __name__ == "__main__":
    unittest.main()
