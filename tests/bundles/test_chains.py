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
"""The bundles list their preprocessing as components; ``monai_dml.data`` builds the same chains for Python users.

The two are two views of one recipe: this test applies each bundle's ``train#deterministic_transforms`` and the
matching Python builder to the same generated case and requires equal arrays, so neither can drift alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose

from monai_dml.data import KITS_HU_WINDOW, LITS_HU_WINDOW, ct_2d_transforms, ct_3d_transforms, qubiq_2d_transforms
from tests.bundles.utils import configs

SIZE = 24


def _bundle_chain(bundle: str, tmp_path, **overrides):
    parser = ConfigParser()
    parser.read_config(configs(bundle, "train"))
    # a small generated data set: the chains, not the data size, are under test
    small = {"data#synthetic_cases": 5, "data#synthetic_size": 32}
    if not bundle.startswith("qubiq"):
        small["data#synthetic_depth"] = 12
    parser.update({"bundle_root": str(tmp_path), **small, **overrides})
    data = parser.get_parsed_content("data").prepare()
    chain = Compose(parser.get_parsed_content("train#deterministic_transforms"))
    return data, chain


def _python_chain(bundle: str):
    if bundle == "qubiq_2d":
        # the bundle's deterministic chain fuses with majority vote; the label mode then replaces the target
        return qubiq_2d_transforms(size=SIZE, fusion="majority")
    if bundle == "lits_2d":
        return ct_2d_transforms(LITS_HU_WINDOW, size=SIZE)
    if bundle == "kits_2d":
        return ct_2d_transforms(KITS_HU_WINDOW, size=SIZE)
    window = LITS_HU_WINDOW if bundle == "lits_3d" else KITS_HU_WINDOW
    return ct_3d_transforms(window)


@pytest.mark.parametrize("bundle", ["qubiq_2d", "lits_2d", "kits_2d", "lits_3d", "kits_3d"])
def test_bundle_chain_equals_python_builder(bundle, tmp_path):
    overrides = {"image_size": SIZE} if bundle.endswith("_2d") else {}
    data, chain = _bundle_chain(bundle, tmp_path, **overrides)
    case = data.train_data()[0]
    ours, theirs = chain(dict(case)), _python_chain(bundle)(dict(case))
    shared = sorted(k for k in ("image", "label", "raters") if k in ours and k in theirs)
    assert "image" in shared and len(shared) >= 2, shared
    for key in shared:
        a, b = torch.as_tensor(ours[key]), torch.as_tensor(theirs[key])
        assert a.shape == b.shape, (key, a.shape, b.shape)
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=key)
        if hasattr(ours[key], "affine"):
            np.testing.assert_allclose(ours[key].affine.numpy(), theirs[key].affine.numpy(), atol=1e-6)
