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
"""``python -m monai_dml.experiments <name> [--quick] [--output_dir DIR] [--seed N]``."""

from __future__ import annotations

import argparse
import json

from monai_dml.experiments import EXPERIMENTS, run_experiment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monai_dml.experiments", description=__doc__)
    parser.add_argument("name", help="; ".join(f"{k}: {v[1]}" for k, v in EXPERIMENTS.items()))
    parser.add_argument("--quick", action="store_true", help="the small configuration (under a minute on 2 CPU cores)")
    parser.add_argument("--output_dir", default="results", help="folder for <name>.json and <name>.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = run_experiment(args.name, quick=args.quick, output_dir=args.output_dir, seed=args.seed)
    print(json.dumps(results.get("table", results), indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
