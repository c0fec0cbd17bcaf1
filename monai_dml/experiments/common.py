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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

__all__ = ["machine", "stopwatch", "write_results"]


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
