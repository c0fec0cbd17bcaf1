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
from typing import Any

import torch
from monai.networks.nets import FlexibleUNet
from parameterized import parameterized

from monai_dml.networks import DeepLabV3Plus, NetworkName, build_network, deeplab_backbone_names

# small widths so that every case runs in well under a second on CPU
SMALL_KWARGS: dict[str, dict[str, Any]] = {
    "unet-resnet18": {"decoder_channels": (16, 8, 8, 4, 4)},
    "unet-resnet50": {"decoder_channels": (16, 8, 8, 4, 4)},
    "unet-efficientnet-b0": {"decoder_channels": (16, 8, 8, 4, 4)},
    "unet-mobilenetv2": {"decoder_channels": (16, 8, 8, 4, 4)},
    "deeplabv3plus-resnet18": {"aspp_channels": 8, "decoder_channels": 8, "low_level_channels": 4},
    "deeplabv3plus-resnet50": {"aspp_channels": 8, "decoder_channels": 8, "low_level_channels": 4},
    "basicunet": {"features": (4, 4, 8, 8, 16, 4)},
    "segresnet": {"init_filters": 8},
    "dynunet": {"filters": (4, 8, 8, 16, 16)},
}
NAMES_3D = ["basicunet", "segresnet", "dynunet", "unet-resnet18", "deeplabv3plus-resnet18"]

# both channel settings for every name, except the two slow resnet50 networks (one setting each)
SHAPE_CASES = [
    [name, 2, in_ch, out_ch]
    for name in NetworkName
    for in_ch, out_ch in ((1, 1), (4, 3))
    if "resnet50" not in name or in_ch == 4
]
SHAPE_CASES += [[name, 3, 1, 3] for name in NAMES_3D]


def _small_deeplab(**kwargs) -> DeepLabV3Plus:
    args: dict[str, Any] = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "backbone": "resnet18"}
    args.update(SMALL_KWARGS["deeplabv3plus-resnet18"])
    args.update(kwargs)
    return DeepLabV3Plus(**args)


class TestBuildNetwork(unittest.TestCase):
    def test_names(self):
        self.assertEqual(len(SMALL_KWARGS), len(NetworkName))
        self.assertEqual({str(n) for n in NetworkName}, set(SMALL_KWARGS))

    @parameterized.expand(SHAPE_CASES)
    def test_shape_and_backward(self, name, spatial_dims, in_channels, out_channels):
        torch.manual_seed(0)
        net = build_network(
            name, spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, **SMALL_KWARGS[name]
        )
        size = (64, 64) if spatial_dims == 2 else (32, 32, 32)
        x = torch.randn(2, in_channels, *size)
        y = net(x)
        self.assertEqual(tuple(y.shape), (2, out_channels, *size))
        (y * torch.randn_like(y)).sum().backward()
        first = next(net.parameters())  # the first convolution of every network
        self.assertEqual(first.shape[1], in_channels)
        assert first.grad is not None
        self.assertGreater(first.grad.abs().sum().item(), 0.0)

    def test_case_insensitive_name_and_enum(self):
        self.assertIsInstance(build_network("BasicUNet", **SMALL_KWARGS["basicunet"]), torch.nn.Module)
        net = build_network(NetworkName.DEEPLABV3PLUS_RESNET18, **SMALL_KWARGS["deeplabv3plus-resnet18"])
        self.assertIsInstance(net, DeepLabV3Plus)

    def test_dynunet_defaults_and_overrides(self):
        net: Any = build_network("dynunet", **SMALL_KWARGS["dynunet"])
        self.assertEqual(list(net.strides), [1, 2, 2, 2, 2])
        self.assertEqual(list(net.kernel_size), [3] * 5)
        self.assertEqual(list(net.upsample_kernel_size), [2, 2, 2, 2])
        net = build_network("dynunet", strides=[1, 2, 2], filters=(4, 8, 8))
        self.assertEqual(list(net.kernel_size), [3] * 3)
        self.assertEqual(list(net.upsample_kernel_size), [2, 2])
        self.assertEqual(tuple(net(torch.randn(1, 1, 16, 16)).shape), (1, 1, 16, 16))

    def test_unknown_name(self):
        with self.assertRaisesRegex(ValueError, "unet-resnet18"):  # the message lists the options
            build_network("unet-mobilenetv3")

    @parameterized.expand([[0], [1], [4]])
    def test_bad_spatial_dims(self, spatial_dims):
        with self.assertRaisesRegex(ValueError, "spatial_dims"):
            build_network("basicunet", spatial_dims=spatial_dims)

    @parameterized.expand([["in_channels"], ["out_channels"]])
    def test_bad_channels(self, arg_name):
        with self.assertRaisesRegex(ValueError, arg_name):
            kwargs: dict[str, Any] = {arg_name: 0}
            build_network("basicunet", **kwargs)

    @parameterized.expand(
        [
            ["basicunet", 2, 1],
            ["segresnet", 3, 1],
            ["dynunet", 3, 1],
            ["unet-resnet18", 2, 1],  # MedicalNet weights are 3D only
            ["deeplabv3plus-resnet50", 3, 4],  # ... and single-channel only
            ["unet-efficientnet-b0", 3, 1],  # ImageNet weights are 2D only
            ["unet-mobilenetv2", 2, 3],  # built from scratch: no weights at all
        ]
    )
    def test_pretrained_unavailable(self, name, spatial_dims, in_channels):
        with self.assertRaisesRegex(ValueError, name):
            build_network(name, spatial_dims=spatial_dims, in_channels=in_channels, pretrained=True)

    def test_flexible_unet_script(self):
        # resnet50/efficientnet encoders compile as MONAI builds them; for resnet18/resnet34 MONAI keeps the
        # parameter-free shortcut as a functools.partial (TorchScript rejects it), which build_network replaces
        for name in ("unet-resnet50", "unet-resnet18"):
            net = build_network(name, **SMALL_KWARGS[name]).eval()
            self.assertIsInstance(net, FlexibleUNet)
            scripted = torch.jit.script(net)
            x = torch.randn(1, 1, 64, 64)
            torch.testing.assert_close(scripted(x), net(x))

    def test_resnet18_unet_has_monai_values_and_gradients(self):
        # the replaced shortcut changes nothing but compilability: same state dict keys, outputs and gradients
        # (none through the shortcut, as MONAI's out.data) as MONAI's own FlexibleUNet with the same weights
        torch.manual_seed(0)
        net = build_network("unet-resnet18", out_channels=2, **SMALL_KWARGS["unet-resnet18"])
        ref = FlexibleUNet(1, 2, backbone="resnet18", spatial_dims=2, **SMALL_KWARGS["unet-resnet18"])
        ref.load_state_dict(net.state_dict())
        x = torch.randn(2, 1, 32, 32, requires_grad=True)
        grads = []
        for model in (net, ref):
            model(x).square().sum().backward()
            grads.append([x.grad.clone()] + [p.grad.clone() for p in model.parameters()])
            x.grad = None
        for a, b in zip(*grads, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


class TestDeepLabV3Plus(unittest.TestCase):
    def test_script(self):
        # resnet18 exercises the replaced "A" shortcuts; the resnet50 encoder is MONAI's own, already scriptable
        torch.manual_seed(1)
        net = _small_deeplab().eval()
        scripted = torch.jit.script(net)
        x = torch.randn(2, 1, 64, 64)
        torch.testing.assert_close(scripted(x), net(x))

    def test_batch_of_one_trains(self):
        net = _small_deeplab().train()
        y = net(torch.randn(1, 1, 64, 64))
        y.mean().backward()
        self.assertIsNotNone(net.encoder.conv1.weight.grad)

    @parameterized.expand([[8, 8], [16, 4], [32, 2]])
    def test_output_stride(self, output_stride, deep_size):
        net = _small_deeplab(output_stride=output_stride).eval()
        x = torch.randn(1, 1, 64, 64)
        features = net.encoder(x)
        self.assertEqual(tuple(features[1].shape[2:]), (16, 16))
        self.assertEqual(tuple(features[-1].shape[2:]), (deep_size, deep_size))
        self.assertEqual(tuple(net(x).shape), (1, 2, 64, 64))

    def test_output_matches_any_input_size(self):
        net = _small_deeplab().eval()
        for size in ((48, 80), (50, 37)):
            self.assertEqual(tuple(net(torch.randn(1, 1, *size)).shape), (1, 2, *size))

    def test_encoder_matches_monai_forward(self):
        # at output stride 32 the encoder computes what MONAI's ResNetEncoder computes
        from monai.networks.nets.resnet import ResNetEncoder

        reference = ResNetEncoder("resnet18", pretrained=False, spatial_dims=2, in_channels=1).eval()
        net = _small_deeplab(output_stride=32).eval()
        net.encoder.load_state_dict(reference.state_dict())
        x = torch.randn(2, 1, 64, 64)
        for ours, theirs in zip(net.encoder(x), reference(x), strict=True):
            torch.testing.assert_close(ours, theirs)

    def test_group_norm_decoder(self):
        net = _small_deeplab(norm=("group", {"num_groups": 4}), act=("leakyrelu", {"negative_slope": 0.1}))
        self.assertEqual(tuple(net(torch.randn(2, 1, 32, 32)).shape), (2, 2, 32, 32))

    def test_backbones(self):
        self.assertIn("resnet18", deeplab_backbone_names())
        self.assertNotIn("efficientnet-b0", deeplab_backbone_names())
        with self.assertRaisesRegex(ValueError, "resnet18"):
            _small_deeplab(backbone="efficientnet-b0")

    @parameterized.expand(
        [
            [{"spatial_dims": 1}, "spatial_dims"],
            [{"in_channels": 0}, "in_channels"],
            [{"out_channels": 0}, "out_channels"],
            [{"aspp_channels": 0}, "aspp_channels"],
            [{"dilations": ()}, "dilations"],
            [{"output_stride": 4}, "output_stride"],
            [{"aspp_dropout": 1.0}, "aspp_dropout"],
        ]
    )
    def test_invalid_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            _small_deeplab(**kwargs)


if __name__ == "__main__":
    unittest.main()
