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
"""
Fault tests of the QUBIQ 2D bundle: a training process killed with ``SIGKILL`` mid-way through a checkpoint write
or mid-epoch, then ``--resume true``. What must hold: ``checkpoint_last.pt`` and ``models/model.pt`` always load,
at most the epoch in progress is lost, the best score survives (``model.pt`` is replaced only by a better model),
the temporary file of the killed write is removed, and the learning rate follows ``lr0 (1 - e / E)^p`` with ``E``
the resumed run's ``--epochs`` (``dml.extend_schedule``).

The killed run is a subprocess started through :data:`FAULT_RUNNER`, a test-only wrapper of
``python -m monai.bundle run`` that holds the process at a chosen point (after the ``N``-th ``checkpoint_last.pt``
is written to its temporary file but before ``os.replace`` moves it into place, or in the middle of epoch ``N``)
and writes a marker file; the test then kills it. Nothing in the package knows about it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from ignite.engine import Events

from monai_dml.data.synthetic import generate_qubiq
from tests.bundles.utils import BUNDLES_DIR, TINY, configs, workflow

BUNDLE = "qubiq_2d"
LR0, POWER = 0.01, 0.9  # the bundle's learning_rate and poly_power

FAULT_RUNNER = r"""
import os, runpy, sys, time

mode, epoch, marker = os.environ["DML_FAULT"], int(os.environ["DML_FAULT_EPOCH"]), os.environ["DML_FAULT_MARKER"]


def hold(where):
    with open(marker, "w") as f:
        f.write(where)
    time.sleep(600)  # killed here by the test


if mode == "checkpoint_write":  # the epoch-th checkpoint_last.pt is complete in its .tmp file, not yet renamed
    replace, writes = os.replace, []

    def held_replace(src, dst, *args, **kwargs):
        if os.fspath(dst).endswith("checkpoint_last.pt"):
            writes.append(src)
            if len(writes) == epoch:
                hold(os.fspath(src))
        return replace(src, dst, *args, **kwargs)

    os.replace = held_replace
elif mode == "mid_epoch":  # the middle iteration of the epoch-th epoch, before its step
    from monai.engines import SupervisedTrainer

    iteration = SupervisedTrainer._iteration

    def held_iteration(self, engine, batch):
        state = engine.state
        if state.epoch == epoch and (state.iteration - 1) % state.epoch_length == state.epoch_length // 2:
            hold(f"epoch {state.epoch} iteration {state.iteration}")
        return iteration(self, engine, batch)

    SupervisedTrainer._iteration = held_iteration
sys.argv = ["monai.bundle", *sys.argv[1:]]
runpy.run_module("monai.bundle", run_name="__main__", alter_sys=True)
"""


def _data(tmp_path_factory: pytest.TempPathFactory, num_cases: int) -> str:
    out = str(tmp_path_factory.mktemp("qubiq") / "data")
    return generate_qubiq(out, num_cases=num_cases, size=32, datasets=["kidney"])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """5 cases: fold 0 trains on 4 (one iteration of 4 per epoch) and validates on 1, the cheapest full run."""
    return _data(tmp_path_factory, 5)


@pytest.fixture(scope="module")
def data_dir10(tmp_path_factory: pytest.TempPathFactory) -> str:
    """10 cases: two training iterations per epoch, so that a run can be stopped between them."""
    return _data(tmp_path_factory, 10)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _lr(done: int, epochs: int) -> float:
    """The documented learning rate of the epoch after ``done`` epochs of an ``epochs``-epoch run."""
    return LR0 * (1.0 - done / epochs) ** POWER


def _load(path: str) -> dict:
    return torch.load(path, weights_only=True)  # fails for a partial or corrupt file


def _epochs_done(checkpoint: dict) -> int:
    return checkpoint["trainer"]["iteration"] // checkpoint["trainer"]["epoch_length"]


def _killed_run(root: str, data_dir: str, mode: str, epoch: int, epochs: int) -> str:
    """Train in a subprocess, ``SIGKILL`` it where ``mode``/``epoch`` say; the marker's content (where it was held)."""
    marker = os.path.join(root, "held")
    cmd = [sys.executable, "-c", FAULT_RUNNER, "run", "--config_file", str(configs(BUNDLE, "train"))]
    cmd += ["--meta_file", *configs(BUNDLE, "metadata"), "--bundle_root", root, "--dataset_dir", data_dir]
    cmd += ["--epochs", str(epochs), *(f"--{k}={v}" for k, v in TINY[BUNDLE].items())]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="2")
    env.update(DML_FAULT=mode, DML_FAULT_EPOCH=str(epoch), DML_FAULT_MARKER=marker)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "log.txt"), "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=os.path.join(BUNDLES_DIR, BUNDLE), stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            while not os.path.isfile(marker) and proc.poll() is None:
                time.sleep(0.2)
            held = _read(marker).decode() if os.path.isfile(marker) else ""
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
    assert held, f"the run ended (rc {proc.returncode}) before the fault point:\n" + _read(log.name).decode()[-3000:]
    assert proc.returncode == -signal.SIGKILL
    return held


def _resume(root: str, data_dir: str, epochs: int) -> dict[str, list]:
    """``--resume true --epochs epochs`` in this process; the epochs started, their learning rates, the scores."""
    wf = workflow(BUNDLE, ["train"], bundle_root=root, dataset_dir=data_dir, **{**TINY[BUNDLE], "epochs": epochs})
    wf.parser["resume"] = "true"
    wf.initialize()
    trainer = wf.parser.get_parsed_content("train#trainer")
    optimizer = wf.parser.get_parsed_content("optimizer")
    evaluator = wf.parser.get_parsed_content("validate#evaluator")
    seen: dict[str, list] = {"started": [], "lr": [], "val_dice": []}

    def started(engine):
        seen["started"].append(engine.state.epoch)
        seen["lr"].append(optimizer.param_groups[0]["lr"])

    trainer.add_event_handler(Events.EPOCH_STARTED, started)
    evaluator.add_event_handler(Events.COMPLETED, lambda e: seen["val_dice"].append(e.state.metrics["val_dice"]))
    wf.run()
    wf.finalize()
    return seen


def _models(root: str) -> list[str]:
    return sorted(os.listdir(os.path.join(root, "models")))


def test_killed_mid_checkpoint_write_then_resumed_with_more_epochs(tmp_path, data_dir):
    root = str(tmp_path)
    last, best_model = os.path.join(root, "models", "checkpoint_last.pt"), os.path.join(root, "models", "model.pt")
    tmp = _killed_run(root, data_dir, "checkpoint_write", epoch=2, epochs=2)
    # killed between writing epoch 2's checkpoint and moving it into place: epoch 1's is the one in place, intact
    assert os.path.basename(tmp) in _models(root) and os.path.basename(tmp).startswith("checkpoint_last.pt.tmp")
    before = _load(last)
    assert _epochs_done(before) == 1
    assert before["lr_scheduler"]["total_iters"] == 2 and before["optimizer"]["param_groups"][0]["lr"] == pytest.approx(
        _lr(1, 2)
    )
    restored_best = before["best_model_saver"]["best"]
    assert restored_best is not None and 0.0 <= restored_best <= 1.0
    model_bytes = _read(best_model)
    assert set(_load(best_model)) == {"model", "image_size"}  # the best model of epochs 1-2 loads

    seen = _resume(root, data_dir, epochs=3)  # the run was planned for 2 epochs; extend it to 3
    assert seen["started"] == [2, 3]  # only the epoch in progress (2) is redone
    # the rest of a 3-epoch schedule, not the 0 that the restored 2-epoch schedule reaches after epoch 2
    assert seen["lr"] == pytest.approx([_lr(1, 3), _lr(2, 3)])
    assert _models(root) == ["checkpoint_last.pt", "model.pt"]  # the killed write's temporary file is gone
    after = _load(last)
    assert _epochs_done(after) == 3 and after["lr_scheduler"]["total_iters"] == 3
    # the best score survived the kill: the resumed run compared its scores with epoch 1's
    assert after["best_model_saver"]["best"] == pytest.approx(max([restored_best, *seen["val_dice"]]))
    _load(best_model)
    if max(seen["val_dice"]) <= restored_best:
        assert _read(best_model) == model_bytes  # no worse model replaced the best one

    # the same with a best score that no Dice can beat (> 1): a resumed run that forgot it writes its first model
    after["best_model_saver"]["best"] = 1.5
    torch.save(after, last)
    model_bytes = _read(best_model)
    seen = _resume(root, data_dir, epochs=4)
    assert seen["started"] == [4] and seen["lr"] == pytest.approx([_lr(3, 4)]) and len(seen["val_dice"]) == 1
    assert _read(best_model) == model_bytes
    assert _load(last)["best_model_saver"]["best"] == 1.5


@pytest.mark.slow
def test_killed_mid_epoch_then_resumed(tmp_path, data_dir10):
    root, data_dir = str(tmp_path), data_dir10
    last = os.path.join(root, "models", "checkpoint_last.pt")
    held = _killed_run(root, data_dir, "mid_epoch", epoch=2, epochs=2)
    assert held.startswith("epoch 2")
    assert _models(root) == ["checkpoint_last.pt", "model.pt"]
    before = _load(last)
    assert _epochs_done(before) == 1
    restored_best = before["best_model_saver"]["best"]
    model_bytes = _read(os.path.join(root, "models", "model.pt"))

    seen = _resume(root, data_dir, epochs=2)  # the same plan: the schedule continues unchanged
    assert seen["started"] == [2]
    assert seen["lr"] == pytest.approx([_lr(1, 2)])
    after = _load(last)
    assert _epochs_done(after) == 2
    assert after["best_model_saver"]["best"] == pytest.approx(max([restored_best, *seen["val_dice"]]))
    if max(seen["val_dice"]) <= restored_best:
        assert _read(os.path.join(root, "models", "model.pt")) == model_bytes
