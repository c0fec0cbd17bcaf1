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
Start and end of a multi-process (``torchrun``) bundle run, called from the ``initialize`` and ``finalize`` lists of
``configs/multi_gpu_*.json``::

    "initialize": ["$dml.distributed.setup()", ...],
    "finalize": ["$dml.distributed.teardown(@train#handlers, @validate#handlers)"]

Why ``teardown`` and not a bare ``dist.destroy_process_group()``: under DDP the ranks do not end at the same moment.
Rank 0 carries the extra handlers (statistics, TensorBoard, checkpoint writes) and is still saving
``checkpoint_last.pt`` when the other ranks leave ``trainer.run()``. A rank that tears its process group down and
exits then takes the interpreter through finalization while its peer is mid-write; when that exit is not clean
(a native thread aborts the process), ``torchrun`` stops the whole job and rank 0 is killed between ``torch.save``
and ``os.replace``: the last epoch is lost and a ``.tmp`` file is left behind. ``teardown`` makes every rank wait
until all have finished, writes included, closes what the run opened, and only then destroys the process group.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import ignite.distributed as idist
import torch
import torch.distributed as dist

__all__ = ["setup", "teardown"]

logger = logging.getLogger(__name__)


def setup(backend: str | None = None, timeout: float | None = None) -> bool:
    """
    Join the process group that ``torchrun`` describes in the environment, unless one exists already.

    Args:
        backend: ``"nccl"`` or ``"gloo"``. Defaults to ``"nccl"`` with CUDA and ``"gloo"`` without.
        timeout: seconds a collective may wait for the other ranks. Defaults to PyTorch's default.

    Returns:
        True when this call created the process group, False when one was already initialised.
    """
    if dist.is_initialized():
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    kwargs: dict[str, Any] = {"backend": backend}
    if timeout is not None:
        kwargs["timeout"] = timedelta(seconds=timeout)
    dist.init_process_group(**kwargs)
    return True


def _closeables(objects: Iterable[Any]) -> list[Any]:
    """The objects (nested in lists, tuples or None) that hold a TensorBoard writer or are one."""
    found: list[Any] = []
    for obj in objects:
        if obj is None:
            continue
        if isinstance(obj, list | tuple):
            found += _closeables(obj)
        elif callable(getattr(obj, "close", None)) and (
            hasattr(obj, "internal_writer")  # MONAI TensorBoardHandler
            or callable(getattr(obj, "flush", None))  # SummaryWriter
        ):
            found.append(obj)
    return found


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or detached stream has nothing left to lose
            stream.flush()


def teardown(*resources: Any) -> None:
    """
    End a multi-process run the same way on every rank: close ``resources``, wait at a barrier until every rank has
    arrived (so rank 0's checkpoint writes are complete before any rank goes away), then destroy the process group.
    Without a process group it only closes ``resources``, so single-process runs may call it too.

    Args:
        resources: objects to close before the barrier, in lists or not (``None`` is skipped): MONAI TensorBoard
            handlers and ``SummaryWriter``-like objects (having ``flush`` and ``close``); others are ignored. A
            handler list instantiated on every rank but attached on rank 0 only leaves writer threads running on
            the other ranks; closing them here ends those threads before the interpreter exits.

    Example (``configs/multi_gpu_train.json``)::

        "finalize": ["$dml.distributed.teardown(@train#handlers, @validate#handlers)"]
    """
    for obj in _closeables(resources):
        obj.close()
    _flush_logs()
    if not (dist.is_available() and dist.is_initialized()):
        return
    rank, world_size = dist.get_rank(), dist.get_world_size()
    if world_size > 1:
        dist.barrier()  # no rank leaves before the slowest one (rank 0, saving) has finished
    logger.debug(f"rank {rank}/{world_size}: destroying the process group")
    dist.destroy_process_group()
    idist.sync()  # ignite caches the group it found; forget it, so that later calls in this process run serial
    _flush_logs()
