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
"""Checkpoints that survive an interrupted write: the last training state and the best model."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

__all__ = ["AtomicCheckpointSaver"]


def _state_dict(obj: Any) -> Any:
    module = getattr(obj, "module", None)  # DistributedDataParallel / DataParallel: save the wrapped network
    if isinstance(obj, torch.nn.parallel.DistributedDataParallel | torch.nn.DataParallel) and module is not None:
        obj = module
    return obj.state_dict()


def _running(pid: int) -> bool:
    """Whether a process with this id exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class AtomicCheckpointSaver:
    """
    Save ``save_dict`` (``{"model": network, "optimizer": ..., "trainer": trainer, ...}``) to one fixed file,
    written to a temporary file first and then moved into place with ``os.replace``, so the file on disk is always a
    complete checkpoint even when the run is killed while saving. MONAI's ``CheckpointSaver`` writes with
    ``atomic=False`` and numbered file names; this saver keeps one file per role, which is what a resume needs.

    Two roles:

    - ``key_metric_name=None`` (the *last* checkpoint): written at every ``save_interval``-th epoch end of the engine
      it is attached to (the trainer). Load it with MONAI's ``CheckpointLoader`` (same ``save_dict``) to resume.
    - ``key_metric_name="val_dice"`` (the *best* model): attached to an evaluator, written at the end of a run
      whose ``engine.state.metrics[key_metric_name]`` beats every earlier one (greater, or smaller with
      ``key_metric_negative_sign``).

    Only rank 0 writes under DDP; a wrapped network is saved without its ``module.`` prefix. A temporary file left
    by a write that was killed (``<filename>.tmp<pid>`` of a process that no longer runs) is removed on ``attach``.

    The best-model saver has a state, its best score (:py:meth:`state_dict`): put the saver itself in the last
    checkpoint's ``save_dict`` (and in the ``CheckpointLoader``'s ``load_dict``) so that a resumed run compares its
    scores with the best one of the run it continues, instead of overwriting the best model with its first one.
    ``extra`` stores plain values next to the state dicts, e.g. the training image size, which inference can compare
    with its own (:py:func:`monai_dml.bundle.require_checkpoint`).

    Example (bundle config)::

        "best_model_saver": {"_target_": "monai_dml.handlers.AtomicCheckpointSaver", "save_dir": "@ckpt_dir",
                             "save_dict": {"model": "@network"}, "extra": {"image_size": "@image_size"},
                             "filename": "model.pt", "key_metric_name": "val_dice"},
        "checkpoint_saver": {"_target_": "monai_dml.handlers.AtomicCheckpointSaver", "save_dir": "@ckpt_dir",
                             "save_dict": {"model": "@network", "optimizer": "@optimizer", "trainer": "@train#trainer",
                                           "best_model_saver": "@best_model_saver"},
                             "filename": "checkpoint_last.pt"}
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        save_dict: Mapping[str, Any],
        filename: str = "checkpoint_last.pt",
        key_metric_name: str | None = None,
        key_metric_negative_sign: bool = False,
        save_interval: int = 1,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """
        Args:
            save_dir: the folder (created when first written).
            save_dict: name -> object with ``state_dict()`` (networks, optimizers, schedulers, ignite engines).
            filename: the file name inside ``save_dir``. Defaults to ``"checkpoint_last.pt"``.
            key_metric_name: None for the last checkpoint, or the metric that selects the best model.
            key_metric_negative_sign: the smaller ``key_metric_name`` the better. Defaults to False.
            save_interval: for the last checkpoint, save every this many epochs. Defaults to 1.
            extra: plain values (numbers, strings, lists, dicts of them) saved under their own names next to the
                state dicts, readable with ``torch.load(..., weights_only=True)``. Defaults to none.

        Raises:
            ValueError: for an empty ``save_dict``, an object without ``state_dict``, ``save_interval < 1`` or an
                ``extra`` name that is also in ``save_dict``.
        """
        if not save_dict:
            raise ValueError("save_dict must name at least one object to save.")
        for name, obj in save_dict.items():
            if not callable(getattr(obj, "state_dict", None)):
                raise ValueError(f"save_dict[{name!r}] ({type(obj).__name__}) has no state_dict().")
        if save_interval < 1:
            raise ValueError(f"save_interval must be at least 1, got {save_interval}.")
        extra = dict(extra or {})
        if set(extra) & set(save_dict):
            raise ValueError(f"extra and save_dict share the names {sorted(set(extra) & set(save_dict))}.")
        self.save_dir = os.fspath(save_dir)
        self.save_dict = dict(save_dict)
        self.filename = filename
        self.key_metric_name = key_metric_name
        self.sign = -1.0 if key_metric_negative_sign else 1.0
        self.save_interval = save_interval
        self.extra = extra
        self.best: float | None = None
        self.logger = logging.getLogger(__name__)

    @property
    def path(self) -> str:
        """The checkpoint file."""
        return os.path.join(self.save_dir, self.filename)

    def attach(self, engine: Engine) -> None:
        """Save at epoch ends (last checkpoint) or at run ends with a better key metric (best model)."""
        self.remove_stale_tmp()
        if self.key_metric_name is None:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self._save)
        else:
            engine.add_event_handler(Events.COMPLETED, self._save_if_better)

    def remove_stale_tmp(self) -> list[str]:
        """
        Remove ``<filename>.tmp<pid>`` files in ``save_dir`` whose writing process no longer runs (rank 0 only).

        Returns:
            the removed paths.
        """
        if idist.get_rank() != 0 or not os.path.isdir(self.save_dir):
            return []
        prefix = f"{self.filename}.tmp"
        removed = []
        for name in sorted(os.listdir(self.save_dir)):
            pid = name[len(prefix) :]
            if not name.startswith(prefix) or (pid.isdigit() and int(pid) != os.getpid() and _running(int(pid))):
                continue
            path = os.path.join(self.save_dir, name)
            try:
                os.remove(path)
            except FileNotFoundError:  # removed meanwhile by another process
                continue
            removed.append(path)
            self.logger.warning(f"removed {path}, left by an interrupted checkpoint write")
        return removed

    def _save_if_better(self, engine: Engine) -> None:
        if self.key_metric_name not in engine.state.metrics:
            raise KeyError(
                f"key_metric_name {self.key_metric_name!r} is not among the engine's metrics "
                f"{sorted(engine.state.metrics)}."
            )
        score = self.sign * float(engine.state.metrics[self.key_metric_name])
        if score != score:  # NaN never counts as better
            return
        if self.best is None or score > self.best:
            self.best = score
            self._save(engine)

    def _save(self, engine: Engine) -> None:
        if idist.get_rank() != 0:
            return
        os.makedirs(self.save_dir, exist_ok=True)
        checkpoint = {name: _state_dict(obj) for name, obj in self.save_dict.items()}
        checkpoint.update(self.extra)
        tmp = f"{self.path}.tmp{os.getpid()}"
        torch.save(checkpoint, tmp)
        os.replace(tmp, self.path)
        self.logger.info(f"saved checkpoint {self.path}")

    def state_dict(self) -> dict[str, Any]:
        """The best score so far, so that a resumed run keeps comparing against it."""
        return {"best": self.best}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore :py:meth:`state_dict`."""
        self.best = state_dict.get("best")
