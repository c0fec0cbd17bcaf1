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
"""Argument checks and small pieces the bundle configs call, each error naming the config key at fault."""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

import torch

from monai_dml.data.utils import is_nifti
from monai_dml.utils import as_bool as read_bool, look_up_option

__all__ = [
    "as_bool",
    "check_fold",
    "check_option",
    "extend_schedule",
    "inference_data",
    "require_checkpoint",
    "resume_from",
]


def check_option(value: Any, options: Sequence[str], key: str) -> str:
    """
    Return ``value`` lower-cased when it is one of ``options`` (any case): :py:func:`monai_dml.utils.look_up_option`
    with the error naming the config key.

    Raises:
        ValueError: naming the config ``key``, the value, the options and the closest option.
    """
    try:
        return str(look_up_option(value, [str(o).lower() for o in options], key))
    except ValueError as e:
        raise ValueError(f"config key {key!r}: {e}") from None


def as_bool(value: Any, key: str) -> bool:
    """
    A config switch as a bool (:py:func:`monai_dml.utils.as_bool`). Command-line overrides arrive as text
    (``--resume true``), and ``bool("false")`` is True, so the usual spellings are read: true/false, yes/no, on/off,
    1/0 (any case).

    Raises:
        ValueError: naming the config ``key`` for anything else.
    """
    try:
        return read_bool(value, key)
    except ValueError as e:
        raise ValueError(f"config key {key!r}: {e}") from None


def check_fold(fold: Any, num_folds: int) -> int:
    """
    Return ``fold`` as an int in ``[0, num_folds)``.

    Raises:
        ValueError: naming the ``fold`` key for a non-integer or out-of-range fold.
    """
    if isinstance(fold, bool) or not isinstance(fold, int | str) or re.fullmatch(r"-?\d+", str(fold).strip()) is None:
        raise ValueError(f"config key 'fold' must be an integer in 0-{num_folds - 1}, got {fold!r}.")
    if not 0 <= int(fold) < num_folds:
        raise ValueError(f"config key 'fold' must be in 0-{num_folds - 1} ({num_folds}-fold split), got {fold}.")
    return int(fold)


def _size(value: Any) -> tuple[int, ...]:
    """An image size as a tuple; ``256`` and ``[256, 256]`` are the same size."""
    size = tuple(int(v) for v in (value if isinstance(value, list | tuple) else [value]))
    return size[:1] if len(set(size)) == 1 else size


def require_checkpoint(path: str | os.PathLike, key: str = "checkpoint", image_size: Any = None) -> str:
    """
    Return ``path`` when it is a file. With ``image_size``, also compare it with the ``image_size`` the training
    run saved in the checkpoint (``configs/train.json`` stores it in ``model.pt``) and log a warning when they
    differ: a network trained on one image size sees objects at another scale when the images are resized to
    another, and its probabilities are not those that were validated. Checkpoints without a saved size are not
    compared.

    Raises:
        FileNotFoundError: naming the config ``key`` and the path (train first, or override ``key``).
        ValueError: naming ``key`` and the path when ``image_size`` is given and the file is not a loadable
            checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"config key {key!r}: checkpoint not found: {path}. Train the bundle first (configs/train.json) or "
            f"override {key!r} with the path of a saved model."
        )
    if image_size is None:
        return path
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"config key {key!r}: {path} is not a loadable checkpoint ({type(e).__name__}: {e}).") from e
    trained = checkpoint.get("image_size") if isinstance(checkpoint, dict) else None
    if trained is not None and _size(trained) != _size(image_size):
        logging.getLogger(__name__).warning(
            f"config key 'image_size': {path} was trained on images resized to {trained}, this run resizes them to "
            f"{image_size}; objects appear at another scale than in training. Use --image_size {trained} unless "
            "this is intended."
        )
    return path


def resume_from(resume: bool, path: str | os.PathLike) -> bool:
    """
    Whether to load the last checkpoint at ``path`` before training. ``resume`` is a switch (true/false); the
    checkpoint is the one ``path`` names (``<ckpt_dir>/checkpoint_last.pt`` in the bundles).

    Raises:
        FileNotFoundError: naming the ``resume`` key and ``path`` when ``resume`` is true and ``path`` is not a file.
        ValueError: naming the ``resume`` key for a value that is not a switch.
    """
    if not as_bool(resume, "resume"):
        return False
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"config key 'resume': no checkpoint to resume from: {path} does not exist. 'resume' is a switch "
            f"(true/false) that continues the run saved in that file, not a path; run without --resume to start "
            f"training, or point --bundle_root (or --ckpt_dir) at the folder of the run to continue."
        )
    return True


def extend_schedule(lr_scheduler: Any, epochs: Any) -> Any:
    """
    Make a polynomial learning-rate schedule end at ``epochs``, the run's current number of epochs, after a resume
    restored one that ended elsewhere. The documented rule: with ``e`` epochs done, the next epoch trains at

    ``lr = lr0 * (1 - e / E) ** power``

    with ``E = epochs``, in a fresh run and in a resumed one alike, so ``--resume true --epochs 41`` after a 40-epoch
    run trains epoch 41 at ``lr0 (1 - 40/41)^p``: the rest of a 41-epoch schedule, not the learning rate 0 that the
    restored 40-epoch schedule reached. ``PolynomialLR.total_iters`` becomes ``epochs`` and the optimizer's rates
    are set from the closed form; with an unchanged ``epochs`` (a resume after an interruption) nothing changes. The
    scheduler is stepped once per epoch (``LrScheduleHandler(epoch_level=True)``). Call it after the checkpoint is
    loaded; in a fresh run it is a no-op. Other schedulers are returned unchanged, restored as saved.

    Args:
        lr_scheduler: the scheduler of the run (config key ``lr_scheduler``).
        epochs: the run's epoch count (config key ``epochs``).

    Returns:
        ``lr_scheduler``.

    Raises:
        ValueError: naming ``epochs`` when it is not a positive integer or fewer than the epochs already done.
    """
    if isinstance(epochs, bool) or re.fullmatch(r"\d+", str(epochs).strip()) is None or int(epochs) < 1:
        raise ValueError(f"config key 'epochs' must be a positive integer, got {epochs!r}.")
    if not isinstance(lr_scheduler, torch.optim.lr_scheduler.PolynomialLR):
        return lr_scheduler
    epochs, done = int(epochs), lr_scheduler.last_epoch
    if done > epochs:
        raise ValueError(
            f"config key 'epochs': the learning-rate schedule has {done} epochs done, more than --epochs {epochs}; "
            f"to extend a run, pass --epochs larger than {done}."
        )
    lr_scheduler.total_iters = epochs
    rates = [base * (1.0 - done / epochs) ** lr_scheduler.power for base in lr_scheduler.base_lrs]
    for group, lr in zip(lr_scheduler.optimizer.param_groups, rates, strict=True):
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
    lr_scheduler._last_lr = rates
    return lr_scheduler


def inference_data(input_path: str | os.PathLike, image_key: str = "image") -> list[dict[str, str]]:
    """
    The images to run inference on: every NIfTI file in a folder (sorted), one NIfTI file, or a data-list JSON
    (a list of entries, or ``{"testing": [...]}``, each with ``image_key``; relative paths are taken from the JSON's
    folder).

    Returns:
        entries ``{image_key: path}`` (other keys of a data list are kept).

    Raises:
        FileNotFoundError: naming ``input_path`` when it does not exist or holds no NIfTI file.
        ValueError: for a JSON file that is not a data list of entries with ``image_key``.
    """
    path = os.fspath(input_path)
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "*")) if os.path.isfile(f) and is_nifti(f))
        if not files:
            raise FileNotFoundError(f"config key 'input_dir': no NIfTI image (.nii, .nii.gz) in {path}.")
        return [{image_key: f} for f in files]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config key 'input_dir': {path} is neither a folder, a NIfTI file nor a JSON list.")
    if is_nifti(path):
        return [{image_key: path}]
    with open(path) as f:
        content = json.load(f)
    entries = content.get("testing", content.get("validation")) if isinstance(content, dict) else content
    if not isinstance(entries, list) or not all(isinstance(e, dict) and image_key in e for e in entries):
        raise ValueError(f"config key 'input_dir': {path} is not a list of entries with an {image_key!r} key.")
    base = os.path.dirname(os.path.abspath(path))
    return [{**e, image_key: os.path.join(base, e[image_key])} for e in entries]
