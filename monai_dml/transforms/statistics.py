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
"""Data-set statistics that pipelines and bundle configs need before training."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from monai.data import Dataset
from monai.utils import optional_import

from monai_dml.losses.functional import estimate_epsilon

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

__all__ = ["estimate_epsilon_from_datalist"]


def estimate_epsilon_from_datalist(
    datalist: Sequence[dict[str, Any]],
    transform: Callable | None = None,
    key: str = "label",
    num_classes: int | None = None,
    include_background: bool = True,
    progress: bool = True,
) -> torch.Tensor:
    """
    The smoothing heuristic of Tilborghs et al. (2022), ``epsilon = E[sum_i y_i]`` per class, over a MONAI data list.

    Each entry is passed through ``transform`` (e.g. the training pipeline's deterministic part: ``LoadImaged``,
    rater fusion, resizing) and its ``key`` is accumulated by :py:func:`monai_dml.losses.estimate_epsilon`, which
    this function only feeds: one implementation of the statistic. From a bundle config::

        "epsilon": "$monai_dml.transforms.estimate_epsilon_from_datalist(@train_datalist, @train#preprocessing)"

    Args:
        datalist: list of dictionaries, one per case.
        transform: applied to each entry before reading ``key``; None uses the entries as they are.
        key: the label key. Defaults to ``"label"``.
        num_classes: one-hot convert single-channel integer label maps to this many classes.
        include_background: if False, channel 0 is dropped from the result.
        progress: show a tqdm progress bar when tqdm is installed. Defaults to True.

    Returns:
        float64 tensor ``(C,)``: the mean soft voxel count per image and class.

    Raises:
        ValueError: for an empty ``datalist``, and whatever the transform or the statistic raise, with the index of
            the entry that failed.
    """
    if len(datalist) == 0:
        raise ValueError("datalist is empty: estimate_epsilon_from_datalist needs at least one case.")
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
        labels(), num_classes=num_classes, include_background=include_background, batched=False, key=key
    )
