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
"""The data-driven smoothing heuristic epsilon of Tilborghs et al. (2022), over labels or a MONAI data list.

Both are re-exported where users look for them: :py:func:`estimate_epsilon` from :py:mod:`monai_dml.losses` (it
sets the losses' ``smooth_nr``/``smooth_dr``) and :py:func:`estimate_epsilon_from_datalist` from
:py:mod:`monai_dml.transforms` (it runs a preprocessing chain over a data list, from a bundle config).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import Dataset
from monai.utils import optional_import

from monai_dml.utils.checks import check_soft_target, one_hot_label_map
from monai_dml.utils.options import look_up_option

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

__all__ = ["estimate_epsilon", "estimate_epsilon_from_datalist"]

#: The summation domains Phi of Tilborghs et al. (``monai_dml.losses.DiceDomain``'s values; utils imports no losses).
_DOMAINS = ("I", "BI", "CI", "BCI")


def _images_per_element(phi: str, batch_size: int | None, sync_batch: bool) -> int:
    """How many images one element of the domain ``phi`` pools: 1 for ``"I"``/``"CI"``, the (global) batch else."""
    if phi in ("I", "CI"):
        return 1
    if batch_size is None or isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"phi={phi!r} pools the labels of a whole batch, so the heuristic E[sum y] over that domain is "
            f"batch_size times the per-image volume: pass batch_size (a positive int, the loss's batch per step), "
            f"got batch_size={batch_size!r}."
        )
    world = 1
    if sync_batch and torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
    return batch_size * world


def estimate_epsilon(
    labels: torch.Tensor | np.ndarray | Iterable[Any],
    num_classes: int | None = None,
    include_background: bool = True,
    batched: bool = True,
    key: str = "label",
    phi: str = "I",
    batch_size: int | None = None,
    sync_batch: bool = False,
) -> torch.Tensor:
    """
    The data-driven smoothing heuristic of Tilborghs et al. (2022), Sect. 2.3: ``epsilon = E[sum_{phi^w} y]``, the
    expected label volume of one element of the summation domain Phi that the loss reduces over.

    For ``phi="I"`` (the paper's setting ``I_eps``) it is the expected foreground volume (soft voxel count) of each
    class in one image, averaged over a data set; used as ``smooth_nr = smooth_dr = epsilon`` it lets the Dice loss
    learn empty maps the way the batch-wise ``"BI"`` domain does with a large batch. For ``phi="CI"`` the per-class
    vector is returned as is: the loss sums it over the classes, which is the heuristic for that domain. For
    ``"BI"``/``"BCI"`` one domain element pools ``batch_size`` images (times the world size when the loss uses
    ``sync_batch=True`` under DDP), so the per-image volume is multiplied by that count (and ``"BCI"`` is again
    summed over the classes by the loss); without ``batch_size`` these domains raise rather than return an
    estimate ``batch_size`` times too small. The expectation is over full batches: a smaller last batch pools less.

    Tilborghs, S. et. al. (2022) The Dice loss in the context of missing or empty labels: introducing Phi and
    epsilon. MICCAI 2022.

    Args:
        labels: one label tensor/array, or an iterable of them (a list, a ``DataLoader``), or of dictionaries that
            hold them under ``key``. Each is channel-first probabilities ``(C, spatial...)``, or an integer map
            ``(1, spatial...)`` when ``num_classes`` is given; with a leading batch axis when ``batched``.
        num_classes: when given, a single-channel integer label map is one-hot converted to this many classes.
        include_background: if False, channel 0 is dropped from the result.
        batched: whether each element has a leading batch axis ``(B, C, spatial...)``. Defaults to True; a single
            tensor passed directly is always treated as batched.
        key: dictionary key of the label when elements are mappings. Defaults to ``"label"``.
        phi: the loss's summation domain {``"I"``, ``"BI"``, ``"CI"``, ``"BCI"``}. Defaults to ``"I"``.
        batch_size: images per training step (per rank), required for ``"BI"``/``"BCI"``, unused otherwise.
        sync_batch: whether the loss pools over all ranks (``DMLoss(sync_batch=True)``); then, inside an
            initialised process group, ``batch_size`` is multiplied by the world size. Defaults to False.

    Returns:
        float64 tensor of shape ``(C,)`` (``C - 1`` without background): mean soft voxel count per image and class,
        times the images pooled by one element of ``phi``.

    Raises:
        ValueError: when no label is given, shapes disagree between elements, a label is not a valid probability
            map or integer map, ``phi`` is unknown, or ``phi`` is ``"BI"``/``"BCI"`` without a valid ``batch_size``.
        TypeError: when an element is neither a tensor, an array nor a mapping holding ``key``.

    Example:
        >>> import torch
        >>> labels = torch.zeros(2, 1, 4, 4)
        >>> labels[0, 0, :2, :2] = 1.0  # 4 voxels in image 0, none in image 1
        >>> estimate_epsilon(labels)
        tensor([2.], dtype=torch.float64)
        >>> estimate_epsilon(labels, phi="BI", batch_size=4)  # one "BI" element sums 4 images: 4 * 2
        tensor([8.], dtype=torch.float64)
    """
    phi = look_up_option(phi, _DOMAINS, "phi")
    pooled = _images_per_element(phi, batch_size, sync_batch)
    items: Iterable[Any] = [labels] if isinstance(labels, (torch.Tensor, np.ndarray)) else labels
    single = isinstance(labels, (torch.Tensor, np.ndarray))
    total: torch.Tensor | None = None
    n_images = 0
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            if key not in item:
                raise TypeError(f"labels[{i}] is a mapping without the key {key!r}; keys: {sorted(item)}.")
            item = item[key]
        if not isinstance(item, (torch.Tensor, np.ndarray)):
            raise TypeError(f"labels[{i}] must be a tensor, an array or a mapping, got {type(item).__name__}.")
        t = torch.as_tensor(np.asarray(item) if isinstance(item, np.ndarray) else item).detach()
        if not (batched or single):
            t = t.unsqueeze(0)
        if t.ndim < 3:
            raise ValueError(f"labels[{i}] must have shape (B, C, spatial...), got {tuple(t.shape)}.")
        if num_classes is not None and t.shape[1] == 1 and num_classes > 1:
            t = one_hot_label_map(t, num_classes, f"labels[{i}]")
        else:
            check_soft_target(t.float(), f"labels[{i}]")
        volume = t.double().sum(dim=tuple(range(2, t.ndim))).sum(dim=0)
        if total is not None and volume.shape != total.shape:
            raise ValueError(f"labels[{i}] has {volume.shape[0]} channels, earlier labels had {total.shape[0]}.")
        total = volume if total is None else total + volume
        n_images += t.shape[0]
    if total is None or n_images == 0:
        raise ValueError("estimate_epsilon needs at least one label, got an empty collection.")
    eps = total / n_images * pooled
    return eps if include_background else eps[1:]


def estimate_epsilon_from_datalist(
    datalist: Sequence[dict[str, Any]],
    transform: Callable | None = None,
    key: str = "label",
    num_classes: int | None = None,
    include_background: bool = True,
    progress: bool = True,
    phi: str = "I",
    batch_size: int | None = None,
    sync_batch: bool = False,
) -> torch.Tensor:
    """
    The smoothing heuristic of Tilborghs et al. (2022), ``epsilon = E[sum_i y_i]`` per class, over a MONAI data list.

    Each entry is passed through ``transform`` (e.g. the training pipeline's deterministic part: ``LoadImaged``,
    rater fusion, resizing) and its ``key`` is accumulated by :py:func:`estimate_epsilon`, which
    this function only feeds: one implementation of the statistic. From a bundle config::

        "epsilon": "$monai_dml.transforms.estimate_epsilon_from_datalist(@train_datalist, @train#preprocessing)"

    Args:
        datalist: list of dictionaries, one per case.
        transform: applied to each entry before reading ``key``; None uses the entries as they are.
        key: the label key. Defaults to ``"label"``.
        num_classes: one-hot convert single-channel integer label maps to this many classes.
        include_background: if False, channel 0 is dropped from the result.
        progress: show a tqdm progress bar when tqdm is installed. Defaults to True.
        phi: the loss's summation domain; ``"BI"``/``"BCI"`` need ``batch_size`` (see :py:func:`estimate_epsilon`).
        batch_size: images per training step (per rank), for ``"BI"``/``"BCI"``.
        sync_batch: whether the loss pools over all ranks under DDP.

    Returns:
        float64 tensor ``(C,)``: the mean soft voxel count per image and class, times the images one element of
        ``phi`` pools.

    Raises:
        ValueError: for an empty ``datalist``, an unknown ``phi`` or ``"BI"``/``"BCI"`` without ``batch_size``
            (before any entry is read), and whatever the transform or the statistic raise, with the index of
            the entry that failed.
    """
    if len(datalist) == 0:
        raise ValueError("datalist is empty: estimate_epsilon_from_datalist needs at least one case.")
    _images_per_element(look_up_option(phi, _DOMAINS, "phi"), batch_size, sync_batch)  # fail before the loading
    dataset = Dataset(data=list(datalist), transform=transform)

    def labels() -> Iterator[Any]:
        indices = range(len(dataset))
        bar = tqdm(indices, desc="estimating epsilon", disable=not progress) if has_tqdm else indices
        for i in bar:
            try:
                yield dataset[i]
            except Exception as e:
                raise ValueError(f"datalist entry {i} ({datalist[i]}) failed: {e}") from e

    return estimate_epsilon(
        labels(),
        num_classes=num_classes,
        include_background=include_background,
        batched=False,
        key=key,
        phi=phi,
        batch_size=batch_size,
        sync_batch=sync_batch,
    )
