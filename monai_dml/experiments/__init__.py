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
"""Experiments that reproduce the papers' claims end to end on generated data.

Each experiment is a module of this package with a function
``run(quick: bool = False, output_dir: str | Path = "results", seed: int = 0) -> dict`` that writes
``<output_dir>/<name>.json`` (the results, see :func:`monai_dml.experiments.common.write_results`) and
``<output_dir>/<name>.png`` (the figure) and returns the results dictionary. ``quick=True`` runs in under a minute on
a 2-core CPU; the full mode is the one ``docs/results.md`` reports.

Run one from the command line::

    python -m monai_dml.experiments nordstrom --quick --output_dir results
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from monai_dml.utils.options import look_up_option

__all__ = ["EXPERIMENTS", "run_experiment"]

# name -> (module, one line on what it reproduces)
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "nordstrom": ("monai_dml.experiments.nordstrom", "Nordström et al., experiment (S), Table 1, Theorems 1-2"),
    "tilborghs": ("monai_dml.experiments.tilborghs", "Tilborghs et al., Table 1: missing vs empty labels"),
    "wang_qubiq": ("monai_dml.experiments.wang_qubiq", "Wang et al., Tables 2 and 6: soft vs hard labels, SDL vs DML"),
    "wang_kd": ("monai_dml.experiments.wang_kd", "Wang et al., Tables 4 and 7: LS and KD with a calibrated teacher"),
}


def run_experiment(name: str, quick: bool = False, output_dir: str | Path = "results", seed: int = 0) -> dict[str, Any]:
    """Run the experiment ``name`` (a key of :data:`EXPERIMENTS`) and return its results dictionary.

    Args:
        name: the experiment's name, e.g. ``"nordstrom"``.
        quick: the small configuration (under a minute on a 2-core CPU) instead of the full one.
        output_dir: folder for ``<name>.json`` and ``<name>.png``; created if missing.
        seed: the seed every random choice of the experiment derives from.
    """
    name = look_up_option(name, list(EXPERIMENTS), "name")
    module = importlib.import_module(EXPERIMENTS[name][0])
    return module.run(quick=quick, output_dir=output_dir, seed=seed)  # type: ignore[no-any-return]
