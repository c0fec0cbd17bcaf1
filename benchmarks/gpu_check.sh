#!/usr/bin/env bash
# The device checks of issues 12 and 13 as one short run for a lent GPU machine (about 5 minutes of device time):
# the loss benchmark on CUDA in float32 and under bfloat16 autocast, then qubiq_2d training epochs with AMP at the
# bundle's 256 x 256. Everything lands in $OUT (default results/gpu): device.txt, losses_*.{txt,json}, qubiq_2d.log.
#
#     OUT=/path bash benchmarks/gpu_check.sh [epochs]
#
# Needs a CUDA build of torch and this package installed (pip install -e .). Not yet run: no GPU was lent so far.
set -euo pipefail
OUT=${OUT:-results/gpu}
EPOCHS=${1:-5}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
python - <<'PY' | tee "$OUT/device.txt"
import monai, torch
assert torch.cuda.is_available(), "no CUDA device"
print(torch.cuda.get_device_name(), "torch", torch.__version__, "monai", monai.__version__)
PY
LOSSES="monai plain dmloss_dml1 dmloss_dml2 unfused_dml1 unvalidated_dml1 bare"
timeout 150 python benchmarks/bench_losses.py --device cuda --repeats 20 --losses $LOSSES \
    --json "$OUT/losses_fp32.json" | tee "$OUT/losses_fp32.txt"
timeout 150 python benchmarks/bench_losses.py --device cuda --amp bf16 --repeats 20 --losses $LOSSES \
    --json "$OUT/losses_bf16.json" | tee "$OUT/losses_bf16.txt"
cd bundles/qubiq_2d
# the bundle's own AMP switch is on with CUDA; validation every epoch, so the log holds per-epoch metrics
timeout 240 python -m monai.bundle run --config_file configs/train.json --meta_file configs/metadata.json \
    --logging_file configs/logging.conf --bundle_root "$OUT/qubiq_2d" --epochs "$EPOCHS" --progress false \
    2>&1 | tee "$OUT/qubiq_2d.log"
