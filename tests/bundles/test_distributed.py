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
"""The end of a multi-process bundle run: ``dml.distributed.setup``/``teardown``, the multi_gpu configs that call
them, leftovers of a killed checkpoint write, and (slow) repeated 2-process runs of the QUBIQ 2D bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import ignite.distributed as idist
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from ignite.engine import Engine

from monai_dml.bundle import distributed
from monai_dml.data.synthetic import generate_qubiq
from monai_dml.handlers import AtomicCheckpointSaver
from tests.bundles.utils import BUNDLES_DIR, configs

BUNDLES = sorted(b for b in os.listdir(BUNDLES_DIR) if os.path.isfile(configs(b, "multi_gpu_train")[0]))


class _Writer:
    def __init__(self) -> None:
        self.closed = False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class _TensorBoardHandler(_Writer):  # what teardown recognises in a MONAI TensorBoardHandler
    internal_writer = True


def test_teardown_without_a_process_group_closes_writers_only():
    writer, handler, other = _Writer(), _TensorBoardHandler(), object()
    distributed.teardown([handler, other, None], None, writer)
    assert writer.closed and handler.closed
    assert not dist.is_initialized()


def test_teardown_ends_the_writer_threads_of_unattached_tensorboard_handlers(tmp_path):
    # on ranks > 0 the bundles instantiate the TensorBoard handlers without attaching them: each holds a SummaryWriter
    # whose daemon thread would still be running when the interpreter exits; teardown must end it
    from monai.handlers import TensorBoardStatsHandler

    before = set(threading.enumerate())
    handlers = [TensorBoardStatsHandler(log_dir=str(tmp_path / "a")), TensorBoardStatsHandler(log_dir=str(tmp_path))]
    started = [t for t in threading.enumerate() if t not in before]
    assert started and all(t.daemon for t in started)
    distributed.teardown(handlers)
    for thread in started:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in started)


def test_setup_and_teardown_one_process(tmp_path, monkeypatch):
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "0", "RANK": "0", "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LOCAL_RANK", "0")
    try:
        assert distributed.setup(backend="gloo", timeout=60)
        assert not distributed.setup(backend="gloo")  # already joined
        assert idist.get_world_size() == 1 and idist.model_name() == "native-dist"
        distributed.teardown()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert not dist.is_initialized()
    assert idist.model_name() == "serial"  # ignite forgot the destroyed group
    distributed.teardown()  # a second call is harmless


def _slow_rank_zero(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    if rank == 0:  # rank 0 is still saving when rank 1 is done
        time.sleep(1.0)
        with open(os.path.join(out_dir, "saved"), "w") as f:
            f.write(str(time.time()))
    distributed.teardown()
    with open(os.path.join(out_dir, f"left{rank}"), "w") as f:
        f.write(str(time.time()))


def test_no_rank_leaves_before_rank_zero_has_saved(tmp_path):
    mp.spawn(_slow_rank_zero, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    saved, left1 = (float((tmp_path / name).read_text()) for name in ("saved", "left1"))
    assert left1 >= saved


@pytest.mark.parametrize("bundle", BUNDLES)
def test_multi_gpu_configs_set_up_and_tear_down_through_the_helpers(bundle):
    with open(configs(bundle, "multi_gpu_train")[0]) as f:
        config = json.load(f)
    assert "$dml.distributed.setup()" in config["initialize"]
    assert config["finalize"] == ["$dml.distributed.teardown(@train#handlers, @validate#handlers)"]
    assert not any("destroy_process_group" in expr for expr in config["initialize"] + config["finalize"])


# -- leftovers of a killed checkpoint write ----------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_tmp_files_are_removed_on_attach(tmp_path):
    net = torch.nn.Linear(2, 1)
    stale = tmp_path / f"checkpoint_last.pt.tmp{_dead_pid()}"
    own = tmp_path / f"checkpoint_last.pt.tmp{os.getpid()}"
    live = tmp_path / f"checkpoint_last.pt.tmp{os.getppid()}"  # a running process may still be writing it
    other = tmp_path / f"model.pt.tmp{_dead_pid()}"  # another saver's file
    for path in (stale, own, live, other):
        path.write_bytes(b"partial")
    saver = AtomicCheckpointSaver(tmp_path, {"model": net})
    saver.attach(Engine(lambda e, b: None))
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, other.name])
    assert saver.remove_stale_tmp() == []
    assert AtomicCheckpointSaver(tmp_path / "absent", {"model": net}).remove_stale_tmp() == []


def test_stale_tmp_files_are_kept_by_other_ranks(tmp_path, monkeypatch):
    monkeypatch.setattr(idist, "get_rank", lambda: 1)
    stale = tmp_path / f"checkpoint_last.pt.tmp{_dead_pid()}"
    stale.write_bytes(b"partial")
    AtomicCheckpointSaver(tmp_path, {"model": torch.nn.Linear(2, 1)}).attach(Engine(lambda e, b: None))
    assert stale.exists()


# -- repeated 2-process runs -------------------------------------------------------------------------------------------
def _two_process_run(root: str, data_dir: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "monai.bundle"]
    cmd += ["run", "--config_file", str(configs("qubiq_2d", "train", "multi_gpu_train"))]
    cmd += ["--meta_file", *configs("qubiq_2d", "metadata"), "--bundle_root", root, "--dataset_dir", data_dir]
    cmd += ["--epochs", "2", "--image_size", "32", "--batch_size", "4", "--progress", "False", "--phi", "BI"]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    cwd = os.path.join(BUNDLES_DIR, "qubiq_2d")
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_repeated_two_process_runs_all_end_cleanly(tmp_path):
    data_dir = generate_qubiq(str(tmp_path / "data"), num_cases=10, size=32, datasets=["kidney"])
    for run in range(20):  # the bar: 20 consecutive 2-process gloo runs exit 0
        root = str(tmp_path / f"run{run}")
        out = _two_process_run(root, data_dir)
        assert out.returncode == 0, f"run {run}: {out.stderr[-3000:]}"
        models = os.path.join(root, "models")
        assert sorted(os.listdir(models)) == ["checkpoint_last.pt", "model.pt"], f"run {run}"
        trainer = torch.load(os.path.join(models, "checkpoint_last.pt"), weights_only=True)["trainer"]
        assert trainer["iteration"] // trainer["epoch_length"] == 2, f"run {run}: the last epoch is missing"
