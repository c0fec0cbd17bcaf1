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

import unittest
from unittest import mock

import numpy as np
import torch
from parameterized import parameterized

from monai_dml.losses.functional import pool_statistics
from monai_dml.utils import estimate_epsilon, estimate_epsilon_from_datalist


def _labels() -> torch.Tensor:
    """Six two-class soft labels of 4 x 4 voxels, different volumes per image and class."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 2, 4, 4, generator=g, dtype=torch.float64) * (torch.rand(6, 2, 1, 1, generator=g) > 0.3)


class TestEpsilonDomain(unittest.TestCase):
    @parameterized.expand([["I", 1], ["CI", 1], ["BI", 3], ["BCI", 3]])
    def test_expected_volume_of_one_domain_element(self, phi, batch_size):
        # Tilborghs et al., Sect. 2.3: eps = E[sum of y over one element phi^w of the loss's domain]. The loss pools
        # per-image sums with pool_statistics and sums a per-class eps over the classes for "CI"/"BCI", so the
        # per-class estimate, summed where the domain joins classes, must equal the mean over the data's batches of
        # the pooled label volume.
        labels = _labels()
        batches = list(labels.split(batch_size))
        pooled = [pool_statistics(b.sum(dim=(2, 3)), phi) for b in batches]  # (1 or B, 1 or C) per batch
        expected = torch.cat([p.double() for p in pooled]).mean(dim=0)
        eps = estimate_epsilon(batches, phi=phi, batch_size=batch_size)
        if phi in ("CI", "BCI"):
            eps = eps.sum(dim=0, keepdim=True)
        np.testing.assert_allclose(eps.numpy(), expected.numpy(), rtol=1e-12)

    def test_batch_domains_scale_with_batch_size(self):
        labels = _labels()
        per_image = labels.double().sum(dim=(2, 3)).mean(dim=0)
        np.testing.assert_allclose(estimate_epsilon(labels).numpy(), per_image.numpy(), rtol=1e-12)
        np.testing.assert_allclose(estimate_epsilon(labels, phi="BI", batch_size=4).numpy(), 4 * per_image.numpy())
        with (
            mock.patch("torch.distributed.is_initialized", return_value=True),
            mock.patch("torch.distributed.get_world_size", return_value=2),
        ):
            out = estimate_epsilon(labels, phi="BCI", batch_size=4, sync_batch=True)
        np.testing.assert_allclose(out.numpy(), 8 * per_image.numpy(), rtol=1e-12)

    def test_batch_domain_without_batch_size_refuses(self):
        for bad in (None, 0, 2.5, True):
            with self.assertRaisesRegex(ValueError, "phi='BI'.*batch_size"):
                estimate_epsilon(_labels(), phi="BI", batch_size=bad)
        with self.assertRaisesRegex(ValueError, "phi"):
            estimate_epsilon(_labels(), phi="XY")

    def test_datalist_refuses_before_loading(self):
        def never(_):
            raise AssertionError("the transform must not run")

        with self.assertRaisesRegex(ValueError, "batch_size"):
            estimate_epsilon_from_datalist([{"label": torch.ones(1, 2, 2)}], never, phi="BCI", progress=False)
        eps = estimate_epsilon_from_datalist(
            [{"label": torch.ones(1, 2, 2)}, {"label": torch.zeros(1, 2, 2)}], phi="BI", batch_size=2, progress=False
        )
        np.testing.assert_allclose(eps.numpy(), [4.0])  # per image 2 voxels on average, 2 images per element


if __name__ == "__main__":
    unittest.main()
