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
"""``AtomicCheckpointSaver`` on tiny ignite engines: the last checkpoint, the best model, wrapped networks, ranks."""

from __future__ import annotations

import math
import os
import re

import ignite.distributed as idist
import pytest
import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader

from monai_dml.handlers import AtomicCheckpointSaver

DATA = [0, 1, 2]  # three iterations per epoch


def _net() -> torch.nn.Linear:
    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.zero_()
    return net


def _trainer(net: torch.nn.Module) -> Engine:
    """Each iteration adds 1 to every weight, so after epoch k (3 iterations each) the weights are 3k."""

    def step(engine: Engine, batch: int) -> None:
        with torch.no_grad():
            net.weight.add_(1.0)

    return Engine(step)


def _saved_weight(path: str) -> float | None:
    if not os.path.isfile(path):
        return None
    return float(torch.load(path, weights_only=True)["model"]["weight"][0, 0])


def _evaluator(net: torch.nn.Module, scores: list[float]) -> Engine:
    """One evaluation per run: the run's index written into the weights, its score into the metrics."""
    engine = Engine(lambda e, b: None)
    runs = iter(range(len(scores)))

    def score(e: Engine) -> None:
        index = next(runs)
        with torch.no_grad():
            net.weight.fill_(float(index))
        e.state.metrics["val_dice"] = scores[index]

    engine.add_event_handler(Events.EPOCH_COMPLETED, score)
    return engine


def _run_evaluations(saver: AtomicCheckpointSaver, net: torch.nn.Module, scores: list[float]) -> list[float | None]:
    """Attach ``saver`` (saving ``net``) to an evaluator; the run whose weights are on disk after each run."""
    evaluator = _evaluator(net, scores)
    saver.attach(evaluator)
    on_disk = []
    for _ in scores:
        evaluator.run([0], max_epochs=1)
        on_disk.append(_saved_weight(saver.path))
    return on_disk


def _best(save_dir, **kwargs) -> tuple[AtomicCheckpointSaver, torch.nn.Module]:
    net = _net()
    return AtomicCheckpointSaver(save_dir, {"model": net}, key_metric_name="val_dice", **kwargs), net


# -- last checkpoint ---------------------------------------------------------------------------------------------------
def test_last_checkpoint_at_every_epoch_end(tmp_path):
    net = _net()
    trainer = _trainer(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.25)
    save_dir = tmp_path / "models" / "nested"  # created on first write
    saver = AtomicCheckpointSaver(save_dir, {"model": net, "optimizer": optimizer, "trainer": trainer})
    assert saver.path == os.path.join(str(save_dir), "checkpoint_last.pt")
    saver.attach(trainer)
    seen = []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append(_saved_weight(saver.path)))
    trainer.run(DATA, max_epochs=3)
    assert seen == [3.0, 6.0, 9.0]
    assert os.listdir(save_dir) == ["checkpoint_last.pt"]  # one fixed file, no temporary left
    checkpoint = torch.load(saver.path, weights_only=True)
    assert set(checkpoint) == {"model", "optimizer", "trainer"}
    assert checkpoint["trainer"]["iteration"] == 9 and checkpoint["trainer"]["epoch_length"] == 3
    assert checkpoint["optimizer"]["param_groups"][0]["lr"] == 0.25
    torch.testing.assert_close(checkpoint["model"]["weight"], torch.full((1, 2), 9.0))


def test_last_checkpoint_every_save_interval_epochs(tmp_path):
    net = _net()
    trainer = _trainer(net)
    saver = AtomicCheckpointSaver(tmp_path, {"model": net}, filename="last.pt", save_interval=2)
    saver.attach(trainer)
    seen = []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append(_saved_weight(saver.path)))
    trainer.run(DATA, max_epochs=5)
    assert seen == [None, 6.0, 6.0, 12.0, 12.0]


def test_last_checkpoint_is_written_to_a_temporary_file_then_replaced(tmp_path, monkeypatch):
    net = _net()
    trainer = _trainer(net)
    saver = AtomicCheckpointSaver(tmp_path, {"model": net})
    saver.attach(trainer)
    replace = os.replace
    moves: list[tuple[str, str, bool]] = []

    def recording_replace(src, dst):
        moves.append((os.fspath(src), os.fspath(dst), os.path.isfile(src)))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    trainer.run(DATA, max_epochs=2)
    assert len(moves) == 2
    for src, dst, complete in moves:
        assert dst == saver.path and src != dst and complete
        assert os.path.dirname(src) == str(tmp_path)  # same folder: the rename is atomic
    assert os.listdir(tmp_path) == ["checkpoint_last.pt"]


def test_an_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    net = _net()
    trainer = _trainer(net)
    saver = AtomicCheckpointSaver(tmp_path, {"model": net})
    saver.attach(trainer)

    def crash(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise RuntimeError("killed while saving")

    trainer.add_event_handler(Events.EPOCH_COMPLETED(once=1), lambda e: monkeypatch.setattr(torch, "save", crash))
    with pytest.raises(RuntimeError, match="killed while saving"):
        trainer.run(DATA, max_epochs=2)
    monkeypatch.undo()
    assert _saved_weight(saver.path) == 3.0  # epoch 1, intact


def test_resume_with_monai_checkpoint_loader(tmp_path):
    net = _net()
    trainer = _trainer(net)
    saver = AtomicCheckpointSaver(tmp_path, {"model": net, "trainer": trainer})
    saver.attach(trainer)
    trainer.run(DATA, max_epochs=2)
    net2 = _net()
    trainer2 = _trainer(net2)
    CheckpointLoader(load_path=saver.path, load_dict={"model": net2, "trainer": trainer2})(trainer2)
    torch.testing.assert_close(net2.weight, torch.full((1, 2), 6.0))
    assert trainer2.state.iteration == 6 and trainer2.state.epoch == 2


# -- best model --------------------------------------------------------------------------------------------------------
def test_best_model_only_when_the_key_metric_improves(tmp_path):
    saver, net = _best(tmp_path, filename="model.pt")
    scores = [0.5, 0.4, 0.7, math.nan, 0.7, 0.6, 0.9]
    # improvements: run 0 (first), run 2 (0.7 > 0.5), run 6 (0.9 > 0.7); an equal score and NaN do not count
    assert _run_evaluations(saver, net, scores) == [0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 6.0]
    assert saver.state_dict() == {"best": 0.9}
    assert os.listdir(tmp_path) == ["model.pt"]


def test_best_model_nan_first_never_counts(tmp_path):
    saver, net = _best(tmp_path)
    assert _run_evaluations(saver, net, [math.nan, 0.0, math.nan]) == [None, 1.0, 1.0]
    assert saver.state_dict() == {"best": 0.0}


def test_best_model_with_negative_sign(tmp_path):
    saver, net = _best(tmp_path, key_metric_negative_sign=True)
    # smaller is better: run 0, run 2 (0.3 < 0.5), run 5 (0.1 < 0.3)
    assert _run_evaluations(saver, net, [0.5, 0.6, 0.3, math.nan, 0.3, 0.1, 0.2]) == [0.0, 0.0, 2.0, 2.0, 2.0, 5.0, 5.0]


def test_best_model_saves_at_the_end_of_the_run_only(tmp_path):
    net = _net()
    engine = Engine(lambda e, b: None)

    def score(e: Engine) -> None:
        with torch.no_grad():
            net.weight.fill_(float(e.state.epoch))
        e.state.metrics["val_dice"] = 0.1 * e.state.epoch

    engine.add_event_handler(Events.EPOCH_COMPLETED, score)
    saver = AtomicCheckpointSaver(tmp_path, {"model": net}, key_metric_name="val_dice")
    saver.attach(engine)
    exists = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: exists.append(os.path.isfile(saver.path)))
    engine.run([0], max_epochs=3)
    assert exists == [False, False, False]
    assert _saved_weight(saver.path) == 3.0


def test_best_state_round_trip(tmp_path):
    first, net = _best(tmp_path)
    _run_evaluations(first, net, [0.8])
    resumed, net = _best(tmp_path)
    resumed.load_state_dict(first.state_dict())
    # a resumed run compares with the restored best: 0.7 and 0.8 are not better, 0.85 is
    assert _run_evaluations(resumed, net, [0.7, 0.8, 0.85]) == [0.0, 0.0, 2.0]
    assert resumed.state_dict() == {"best": 0.85}
    fresh, net = _best(tmp_path / "fresh")
    fresh.load_state_dict({})
    assert fresh.state_dict() == {"best": None}
    assert _run_evaluations(fresh, net, [0.1]) == [0.0]


def test_the_saver_state_can_travel_in_a_checkpoint(tmp_path):
    best, best_net = _best(tmp_path / "best")
    _run_evaluations(best, best_net, [0.6])
    net = _net()
    trainer = _trainer(net)
    AtomicCheckpointSaver(tmp_path, {"model": net, "best_saver": best}).attach(trainer)
    trainer.run(DATA, max_epochs=1)
    assert torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)["best_saver"] == {"best": 0.6}


def test_extra_values_are_saved_next_to_the_state_dicts(tmp_path):
    saver, net = _best(tmp_path, filename="model.pt", extra={"image_size": [32, 32], "spatial_dims": 2})
    _run_evaluations(saver, net, [0.5])
    checkpoint = torch.load(saver.path, weights_only=True)
    assert checkpoint["image_size"] == [32, 32] and checkpoint["spatial_dims"] == 2
    loaded = _net()
    CheckpointLoader(load_path=saver.path, load_dict={"model": loaded})(Engine(lambda e, b: None))  # as inference
    torch.testing.assert_close(loaded.weight, torch.zeros(1, 2))


def test_missing_key_metric_is_named(tmp_path):
    engine = Engine(lambda e, b: None)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(val_ece=0.1))
    AtomicCheckpointSaver(tmp_path, {"model": _net()}, key_metric_name="val_dice").attach(engine)
    with pytest.raises(KeyError, match=re.escape("'val_dice'")):
        engine.run([0], max_epochs=1)
    assert os.listdir(tmp_path) == []


# -- wrapped networks and ranks ----------------------------------------------------------------------------------------
def test_data_parallel_is_saved_without_module_prefix(tmp_path):
    net = _net()
    trainer = _trainer(net)
    saver = AtomicCheckpointSaver(tmp_path, {"model": torch.nn.DataParallel(net)})
    saver.attach(trainer)
    trainer.run(DATA, max_epochs=1)
    state = torch.load(saver.path, weights_only=True)["model"]
    assert list(state) == ["weight"]
    torch.testing.assert_close(state["weight"], torch.full((1, 2), 3.0))
    _net().load_state_dict(state)  # loads into the bare network


def test_distributed_data_parallel_is_saved_without_module_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        net = _net()
        trainer = _trainer(net)
        saver = AtomicCheckpointSaver(tmp_path / "models", {"model": torch.nn.parallel.DistributedDataParallel(net)})
        saver.attach(trainer)
        trainer.run(DATA, max_epochs=1)
    finally:
        idist.finalize()  # destroys the group and resets ignite's cached computation model to serial
    state = torch.load(saver.path, weights_only=True)["model"]
    assert list(state) == ["weight"]
    torch.testing.assert_close(state["weight"], torch.full((1, 2), 3.0))


def test_only_rank_zero_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(idist, "get_rank", lambda: 1)
    net = _net()
    trainer = _trainer(net)
    last = AtomicCheckpointSaver(tmp_path / "last", {"model": net})
    last.attach(trainer)
    trainer.run(DATA, max_epochs=2)
    best, best_net = _best(tmp_path / "best")
    assert _run_evaluations(best, best_net, [0.5]) == [None]
    assert best.state_dict() == {"best": 0.5}  # every rank keeps the same best score
    assert os.listdir(tmp_path) == []


# -- argument checks ---------------------------------------------------------------------------------------------------
def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="save_dict"):
        AtomicCheckpointSaver(tmp_path, {})
    with pytest.raises(ValueError, match=re.escape("save_dict['epochs']")):
        AtomicCheckpointSaver(tmp_path, {"model": _net(), "epochs": 3})
    with pytest.raises(ValueError, match="save_interval"):
        AtomicCheckpointSaver(tmp_path, {"model": _net()}, save_interval=0)
    with pytest.raises(ValueError, match=re.escape("['model']")):
        AtomicCheckpointSaver(tmp_path, {"model": _net()}, extra={"model": 1})
    assert os.listdir(tmp_path) == []
