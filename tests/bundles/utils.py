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
"""Shared helpers of the bundle tests: tiny overrides per bundle and the two ways of running a bundle."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLES_DIR = os.path.join(REPO, "bundles")
SCHEMA = os.path.join(BUNDLES_DIR, "metadata_schema.json")

# per bundle: overrides that make one epoch take seconds on 2 CPU cores
TINY: dict[str, dict[str, Any]] = {
    "qubiq_2d": {"image_size": 32, "batch_size": 4, "progress": False},
    "lits_2d": {"image_size": 32, "batch_size": 4, "progress": False},
    "kits_2d": {"image_size": 32, "batch_size": 4, "progress": False},
    "lits_3d": {"patch_size": [32, 32, 32], "batch_size": 1, "num_samples": 1, "progress": False},
    "kits_3d": {"patch_size": [32, 32, 32], "batch_size": 1, "num_samples": 1, "progress": False},
}
# tiny 3D networks (BasicUNet widths), set on network_def in train and inference alike
TINY_NETWORK: dict[str, dict[str, Any]] = {
    "lits_3d": {"network_def#features": [4, 4, 8, 8, 16, 4]},
    "kits_3d": {"network_def#features": [4, 4, 8, 8, 16, 4]},
}


def configs(bundle: str, *names: str) -> list[str]:
    """Absolute paths of a bundle's config files."""
    return [os.path.join(BUNDLES_DIR, bundle, "configs", f"{name}.json") for name in names]


def run_cli(bundle: str, names: list[str], timeout: int = 300, **overrides: Any) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run`` in a subprocess, from the bundle folder, as a user would type it."""
    files = configs(bundle, *names)
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(files)]
    cmd += [
        "--meta_file",
        *configs(bundle, "metadata"),
        "--logging_file",
        os.path.join(BUNDLES_DIR, bundle, "configs", "logging.conf"),
    ]
    for key, value in overrides.items():
        cmd += [f"--{key}", repr(value) if isinstance(value, bool | list) else str(value)]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="2")
    return subprocess.run(
        cmd, cwd=os.path.join(BUNDLES_DIR, bundle), capture_output=True, text=True, timeout=timeout, env=env
    )


def workflow(bundle: str, names: list[str], workflow_type: str = "train", **overrides: Any) -> Any:
    """A MONAI ``ConfigWorkflow`` of the bundle in this process (faster than a subprocess for many small runs)."""
    from monai.bundle import ConfigWorkflow

    return ConfigWorkflow(
        config_file=configs(bundle, *names),
        meta_file=configs(bundle, "metadata")[0],
        logging_file=os.path.join(BUNDLES_DIR, bundle, "configs", "logging.conf"),
        workflow_type=workflow_type,
        **overrides,
    )


def error_chain(exc: BaseException) -> str:
    """The messages of an exception and of every exception it was raised from."""
    messages, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        messages.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(messages)
