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
"""The bundles' documented TorchScript export (MONAI's ``ckpt_export``) gives the eager network's outputs."""

from __future__ import annotations

import os

import pytest
import torch
from monai.bundle import ConfigParser, ckpt_export

from tests.bundles.utils import BUNDLES_DIR, TINY_NETWORK, configs

# per bundle: two input sizes, multiples of 32 (qubiq_2d stands for the three 2D bundles' ResNet18 FlexibleUNet,
# kits_3d for the 3D bundles' BasicUNet)
SIZES = {
    "qubiq_2d": [(1, 1, 32, 32), (2, 1, 64, 96)],
    "kits_3d": [(1, 1, 32, 32, 32), (1, 1, 32, 64, 32)],
}
# small decoders keep the test quick; the ResNet18 encoder, where tracing went wrong, is the bundles' own
SMALL = {"qubiq_2d": {"network_def#decoder_channels": [16, 8, 8, 4, 4]}, **TINY_NETWORK}


def _eager_and_checkpoint(bundle: str, tmp_path, overrides: dict) -> tuple[torch.nn.Module, str]:
    """The inference config's network with perturbed weights and BatchNorm statistics, saved as a bundle would."""
    parser = ConfigParser()
    parser.read_config(configs(bundle, "inference"))
    parser.read_meta(configs(bundle, "metadata")[0])
    parser.update({"bundle_root": str(tmp_path), **overrides})
    net = parser.get_parsed_content("network_def")
    torch.manual_seed(0)
    with torch.no_grad():
        for tensor in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            tensor.add_(0.1 * torch.randn_like(tensor)).abs_()  # abs keeps running variances positive
    ckpt = str(tmp_path / "model.pt")
    torch.save({"model": net.state_dict()}, ckpt)
    return net.eval(), ckpt


def _export(bundle: str, tmp_path, ckpt: str, overrides: dict, **kwargs) -> torch.jit.ScriptModule:
    filepath = str(tmp_path / "model.ts")
    ckpt_export(
        "network_def",
        filepath=filepath,
        ckpt_file=ckpt,
        meta_file=configs(bundle, "metadata")[0],
        config_file=configs(bundle, "inference")[0],
        key_in_ckpt="model",
        bundle_root=str(tmp_path),
        **overrides,
        **kwargs,
    )
    return torch.jit.load(filepath)


def _assert_same_outputs(exported, eager, sizes) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for size in sizes:
            x = torch.rand(size)
            torch.testing.assert_close(exported(x), eager(x), rtol=0, atol=1e-5, msg=f"input {size}")


@pytest.mark.parametrize("bundle", sorted(SIZES))
def test_documented_export_scripts_the_eager_network(bundle, tmp_path):
    """``ckpt_export network_def --key_in_ckpt model`` as the bundle READMEs give it (scripting, no tracing)."""
    overrides = dict(SMALL.get(bundle, {}))
    eager, ckpt = _eager_and_checkpoint(bundle, tmp_path, overrides)
    exported = _export(bundle, tmp_path, ckpt, overrides)
    assert os.path.getsize(tmp_path / "model.ts") > 0
    _assert_same_outputs(exported, eager, SIZES[bundle])


@pytest.mark.slow
def test_traced_resnet18_unet_is_not_frozen_to_the_example(tmp_path):
    """``--use_trace True``: MONAI's ResNet18 shortcut used ``.data``, which tracing froze to the example input."""
    overrides = SMALL["qubiq_2d"]
    eager, ckpt = _eager_and_checkpoint("qubiq_2d", tmp_path, overrides)
    exported = _export("qubiq_2d", tmp_path, ckpt, overrides, use_trace=True, input_shape=[1, 1, 32, 32])
    _assert_same_outputs(exported, eager, SIZES["qubiq_2d"])


def test_every_bundle_documents_the_scripted_export():
    """No bundle README sends users to the tracing export any more."""
    for bundle in sorted(os.listdir(BUNDLES_DIR)):
        readme = os.path.join(BUNDLES_DIR, bundle, "docs", "README.md")
        if os.path.isfile(readme):
            with open(readme) as f:
                text = f.read()
            assert "ckpt_export" in text, bundle
            assert "--use_trace True" not in text, bundle
