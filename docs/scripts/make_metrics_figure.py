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
"""Draw docs/figures/reliability_diagram.png: a synthetic binary predictor over-confident by a temperature of 2.5
(labels drawn with the true probability). Needs the ``plot`` extra.

    python docs/scripts/make_metrics_figure.py
"""

from __future__ import annotations

import os

import torch

from monai_dml.metrics import ECEMetric
from monai_dml.visualize import plot_reliability_diagram


def main() -> None:
    g = torch.Generator().manual_seed(0)
    true_p = torch.rand(4, 1, 64, 64, generator=g)
    labels = (torch.rand(4, 1, 64, 64, generator=g) < true_p).float()
    reported = torch.sigmoid(torch.logit(true_p.clamp(1e-4, 1 - 1e-4)) * 2.5)
    metric = ECEMetric()
    metric(reported, labels)
    counts, sum_conf, sum_acc = (t.sum(0) for t in metric.pooled_bin_sums())
    out = os.path.join(os.path.dirname(__file__), "..", "figures", "reliability_diagram.png")
    plot_reliability_diagram(
        sum_conf / counts.clamp_min(1),
        sum_acc / counts.clamp_min(1),
        counts,
        path=out,
        title="Synthetic predictor, over-confident (T = 2.5)",
    )
    print(f"wrote {os.path.normpath(out)}, pooled ECE {float(metric.aggregate_pooled()):.4f}")


if __name__ == "__main__":
    main()
