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

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable
from monai.utils import convert_to_tensor

from monai_dml.transforms.fusion.array import FusionMethod, RandRaterFusion, RaterFusion, _is_random_method
from monai_dml.transforms.fusion.staple import StapleResult
from monai_dml.utils import check_rater_shapes

__all__ = [
    "RandRaterFusionD",
    "RandRaterFusionDict",
    "RandRaterFusiond",
    "RaterFusionD",
    "RaterFusionDict",
    "RaterFusiond",
]


class RaterFusiond(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`monai_dml.transforms.RaterFusion`.

    Like MONAI's ``VoteEnsembled``: one key holds the stacked raters ``(R, spatial...)``, or several keys hold one
    rater each (``(1, spatial...)`` or ``(spatial...)``), stacked in the order given; the result goes to
    ``output_key`` (defaults to the single key, replacing the stack).

    Every method but ``"random"`` is deterministic, so this class is not ``Randomizable`` and MONAI's
    ``CacheDataset`` caches the fused target with the rest of the chain before it. ``RaterFusiond(method="random")``
    (as in a bundle config) returns a :py:class:`monai_dml.transforms.RandRaterFusiond`, a ``Randomizable``
    subclass that ``CacheDataset`` reruns every epoch.

    Example:
        >>> import torch
        >>> t = RaterFusiond(keys="raters", output_key="label", method="majority")
        >>> out = t({"raters": torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]]).reshape(3, 1, 3).float()})
        >>> out["label"]  # a MetaTensor, as MONAI's transforms return with get_track_meta()
        metatensor([[[1., 1., 0.]]])
    """

    backend = RaterFusion.backend

    def __new__(
        cls,
        keys: KeysCollection | None = None,
        output_key: str | None = None,
        method: FusionMethod | str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> RaterFusiond:
        if cls is RaterFusiond and _is_random_method(method):
            cls = RandRaterFusiond
        return super().__new__(cls)

    def __init__(
        self,
        keys: KeysCollection,
        output_key: str | None = None,
        method: FusionMethod | str | None = None,
        num_classes: int | None = None,
        weights: Sequence[float] | None = None,
        rater_dim: int = 0,
        save_staple_stats: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: one key holding the rater stack, or one key per rater.
            output_key: where the fused target goes; required with several keys. Defaults to the single key.
            method: see :py:class:`monai_dml.transforms.RaterFusion`; ``"random"`` makes the instance a
                :py:class:`monai_dml.transforms.RandRaterFusiond`. Defaults to None: ``"uniform"`` (``"random"``
                for RandRaterFusiond).
            num_classes: see :py:class:`monai_dml.transforms.RaterFusion`.
            weights: see :py:class:`monai_dml.transforms.RaterFusion`.
            rater_dim: the rater axis of a single stacked key. Defaults to 0.
            save_staple_stats: with ``"staple"``, also store the estimated per-rater sensitivity and specificity
                under ``f"{output_key}_sensitivity"`` and ``f"{output_key}_specificity"``.
            allow_missing_keys: don't raise if a key is missing.

        Raises:
            ValueError: with several keys and no ``output_key``, or any argument RaterFusion (RandRaterFusion for
                RandRaterFusiond) rejects.
        """
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) > 1 and output_key is None:
            raise ValueError(f"output_key is required when several keys are fused, got keys {list(self.keys)}.")
        if len(self.keys) > 1 and rater_dim != 0:
            raise ValueError(
                f"rater_dim applies to a single stacked key; with several keys it must be 0, got {rater_dim}."
            )
        self.output_key = output_key if output_key is not None else self.keys[0]
        fusion = RandRaterFusion if isinstance(self, Randomizable) else RaterFusion
        self.fusion = fusion(method=method, num_classes=num_classes, weights=weights, rater_dim=rater_dim)
        if isinstance(self.fusion, Randomizable) != isinstance(self, Randomizable):
            raise ValueError(f"{type(self).__name__} is not Randomizable and cannot fuse with method='random'.")
        self.save_staple_stats = save_staple_stats

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        present = list(self.key_iterator(d))
        if not present:
            return d
        if len(self.keys) == 1:
            stack = d[present[0]]
        else:
            stack = self._stack(present, [d[k] for k in present])
        d[self.output_key], staple = self._fuse(stack)
        if self.save_staple_stats and staple is not None:
            d[f"{self.output_key}_sensitivity"] = staple.sensitivity
            d[f"{self.output_key}_specificity"] = staple.specificity
        return d

    def _fuse(self, stack: NdarrayOrTensor) -> tuple[NdarrayOrTensor, StapleResult | None]:
        return self.fusion.fuse(stack)

    def _stack(self, keys: list[Hashable], items: list[NdarrayOrTensor]) -> NdarrayOrTensor:
        tensors = [convert_to_tensor(x, track_meta=False) for x in items]
        tensors = [t[0] if t.ndim > 2 and t.shape[0] == 1 else t for t in tensors]
        check_rater_shapes(((f"key {k!r}", t.shape) for k, t in zip(keys, tensors, strict=True)), "rater keys")
        stacked = torch.stack(tensors)
        first = items[0]
        if isinstance(first, MetaTensor):
            return MetaTensor(stacked, meta=first.meta)
        return stacked


class RandRaterFusiond(Randomizable, RaterFusiond):
    """
    Dictionary-based wrapper of :py:class:`monai_dml.transforms.RandRaterFusion`: one rater drawn per call
    (``method="random"``), with the keys and ``output_key`` of :py:class:`monai_dml.transforms.RaterFusiond`.
    ``RaterFusiond(method="random")`` returns an instance of this class. The arguments are RaterFusiond's, with
    ``method`` defaulting to ``"random"`` (the only one accepted); ``save_staple_stats`` has no effect.

    Example:
        >>> import torch
        >>> raters = torch.tensor([[1, 1, 0], [0, 0, 1]]).reshape(2, 1, 3).float()
        >>> t = RandRaterFusiond(keys="raters", output_key="label").set_random_state(0)
        >>> [t({"raters": raters})["label"].flatten().tolist() for _ in range(3)]  # one rater per call
        [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    """

    fusion: RandRaterFusion

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandRaterFusiond:
        super().set_random_state(seed, state)
        self.fusion.set_random_state(seed, state)
        return self

    def randomize(self, data: int) -> None:
        """Draw the rater index among ``data`` raters."""
        self.fusion.randomize(data)

    def _fuse(self, stack: NdarrayOrTensor) -> tuple[NdarrayOrTensor, StapleResult | None]:
        return self.fusion(stack), None


RaterFusionD = RaterFusionDict = RaterFusiond
RandRaterFusionD = RandRaterFusionDict = RandRaterFusiond
