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
"""What every experiment shares: the machine description, timing and the results file."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["machine", "one_thread", "paired_test", "predict_logits", "stopwatch", "train_segmenter", "write_results"]


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare a runtime: CPU count, torch/MONAI versions, the device used."""
    import monai

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


@contextmanager
def stopwatch(record: dict[str, Any], key: str = "runtime_s") -> Iterator[None]:
    """Store the wall-clock seconds of the ``with`` block in ``record[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        record[key] = round(time.perf_counter() - start, 1)


@contextmanager
def one_thread() -> Iterator[None]:
    """
    Run the block on one torch CPU thread and restore the thread count after. The experiments' networks are small:
    on a 2-core machine two threads are slower than one (they compete with each other and with other work), and one
    thread keeps the order of the sums fixed.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def write_results(results: dict[str, Any], output_dir: str | Path, name: str) -> Path:
    """Write ``results`` (plus ``name`` and :func:`machine`) to ``<output_dir>/<name>.json`` and return the path.

    The results should hold ``"config"`` (the settings of the run), ``"table"`` (a list of row dictionaries, the
    numbers ``docs/results.md`` prints) and ``"runtime_s"``.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    payload = {"experiment": name, "machine": machine(), **results}
    path.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    return path


TargetSource = Callable[[int], Sequence[torch.Tensor]]


def train_segmenter(
    network: torch.nn.Module,
    images: torch.Tensor,
    targets: Sequence[torch.Tensor] | TargetSource,
    loss_fn: Callable[..., torch.Tensor],
    epochs: int,
    batch_size: int = 8,
    learning_rate: float = 0.01,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    poly_power: float = 0.9,
    seed: int = 0,
) -> torch.nn.Module:
    """
    The papers' training recipe in a plain loop (Wang et al. 2023, Sect. 3.2): SGD with momentum and weight decay,
    the learning rate decayed per epoch by the poly policy (``torch.optim.lr_scheduler.PolynomialLR``), shuffled
    mini-batches drawn from a seeded generator.

    Args:
        network: the model, trained in place.
        images: ``(N, C_in, spatial...)`` training images.
        targets: the loss's targets, each ``(N, ...)`` (e.g. ``(label,)`` or ``(label, teacher)``); or a function of
            the epoch returning them (targets drawn anew each epoch, e.g. a random rater).
        loss_fn: called as ``loss_fn(logits, *batch_targets)``.
        epochs: number of passes over the data.
        batch_size, learning_rate, momentum, weight_decay, poly_power: the optimiser's settings.
        seed: seed of the batch order.

    Returns:
        ``network``, in evaluation mode.
    """
    optimizer = torch.optim.SGD(network.parameters(), lr=learning_rate, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=epochs, power=poly_power)
    generator = torch.Generator().manual_seed(seed)
    network.train()
    for epoch in range(epochs):
        epoch_targets = targets(epoch) if callable(targets) else targets
        order = torch.randperm(images.shape[0], generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            loss = loss_fn(network(images[index]), *(t[index] for t in epoch_targets))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return network.eval()


@torch.no_grad()
def predict_logits(network: torch.nn.Module, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """The logits of ``network`` (in evaluation mode) on ``images`` ``(N, C_in, spatial...)``, in batches."""
    network.eval()
    return torch.cat([network(images[i : i + batch_size]) for i in range(0, images.shape[0], batch_size)])


def paired_test(a: Sequence[float], b: Sequence[float]) -> float:
    """
    Two-sided Wilcoxon signed-rank test of paired per-case scores (the same validation cases under two training
    settings); returns the p-value, 1.0 when every pair is equal.
    """
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be paired 1D sequences of the same length, got {x.shape} and {y.shape}.")
    if np.allclose(x, y, rtol=0.0, atol=1e-12):
        return 1.0
    return float(wilcoxon(x, y).pvalue)
