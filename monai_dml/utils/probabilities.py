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
"""Re-tempering of probability maps, shared by distillation targets, ``KDLoss`` and temperature scaling."""

from __future__ import annotations

import torch

__all__ = ["temper_probabilities"]


def temper_probabilities(probs: torch.Tensor, temperature: float, dim: int = 0) -> torch.Tensor:
    """
    Re-temper a probability map: ``q_c = p_c^(1/T) / sum_k p_k^(1/T)``, the softmax of the logits divided by ``T``.

    A single channel along ``dim`` is a binary foreground probability, re-tempered as ``[1 - p, p]`` and returned
    as one channel. Computed in float64 in log space; zero probabilities stay zero.

    Args:
        probs: probabilities along ``dim`` (summing to 1 for more than one channel).
        temperature: ``T > 0``; ``T < 1`` sharpens, ``T > 1`` softens, ``T = 1`` returns ``probs`` unchanged.
        dim: the class axis. Defaults to 0 (channel-first without batch); use 1 for batches.

    Returns:
        tensor of the shape of ``probs``, float64 unless ``T = 1``.
    """
    if temperature == 1.0:
        return probs
    p = probs.double()
    binary = p.shape[dim] == 1
    if binary:
        p = torch.cat([1 - p, p], dim=dim)
    logits = torch.log(p.clamp_min(torch.finfo(torch.float64).tiny)) / temperature
    out = torch.softmax(logits, dim=dim)
    return out.narrow(dim, 1, 1) if binary else out
