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
from monai.networks.nets.flexible_unet import FLEXUNET_BACKBONE
from parameterized import parameterized

from monai_dml.losses import DMLoss
from monai_dml.networks import InvertedResidual, MobileNetV2Encoder, build_network

# Sandler et al. (2018), Table 2, typed from the paper: (input size at 224, operator, t, c, n, s)
TABLE2 = [
    (224, "conv2d", None, 32, 1, 2),
    (112, "bottleneck", 1, 16, 1, 1),
    (112, "bottleneck", 6, 24, 2, 2),
    (56, "bottleneck", 6, 32, 3, 2),
    (28, "bottleneck", 6, 64, 4, 2),
    (14, "bottleneck", 6, 96, 3, 1),
    (14, "bottleneck", 6, 160, 3, 2),
    (7, "bottleneck", 6, 320, 1, 1),
    (7, "conv2d 1x1", None, 1280, 1, 1),
]
# torchvision's mobilenet_v2 (width 1.0, 1000 classes) has 3,504,872 parameters; its classifier is
# Linear(1280, 1000): 1280 * 1000 + 1000 of them
KNOWN_TOTAL, CLASSIFIER = 3_504_872, 1280 * 1000 + 1000


def _table_parameters(in_channels: int = 3) -> int:
    """Parameters implied by Table 2 and the bottleneck of Table 1 (convolutions without bias, batch norm 2/ch)."""
    total, channels = 0, in_channels
    for _, op, t, c, n, _s in TABLE2:
        if op == "conv2d":
            total += channels * c * 9 + 2 * c
            channels = c
        elif op == "conv2d 1x1":
            total += channels * c + 2 * c
            channels = c
        else:
            for _ in range(n):
                assert t is not None
                hidden = channels * t
                if t != 1:  # the expansion layer of t = 1 is the identity
                    total += channels * hidden + 2 * hidden
                total += hidden * 9 + 2 * hidden  # depthwise 3x3
                total += hidden * c + 2 * c  # linear projection
                channels = c
    return total


def _expected_features() -> list[tuple[int, int]]:
    """(channels, stride) at the end of each stride level of Table 2, from stride 2 to 32."""
    stride, last = 1, {}
    for _, _, _, c, _, s in TABLE2:
        stride *= s
        last[stride] = c
    return [(last[k], k) for k in (2, 4, 8, 16, 32)]


class TestMobileNetV2Encoder(unittest.TestCase):
    def test_table_features(self):
        expected = _expected_features()
        self.assertEqual(expected, [(16, 2), (24, 4), (32, 8), (96, 16), (1280, 32)])
        self.assertEqual(MobileNetV2Encoder.num_channels_per_output(), [tuple(c for c, _ in expected)])
        self.assertEqual(FLEXUNET_BACKBONE.register_dict["mobilenetv2"]["feature_channel"], (16, 24, 32, 96, 1280))
        encoder = MobileNetV2Encoder(spatial_dims=2, in_channels=3).eval()
        for size in ((64, 64), (96, 160)):
            with torch.no_grad():
                features = encoder(torch.randn(1, 3, *size))
            shapes = [tuple(f.shape[1:]) for f in features]
            self.assertEqual(shapes, [(c, size[0] // k, size[1] // k) for c, k in expected])

    def test_parameter_count(self):
        encoder = MobileNetV2Encoder(spatial_dims=2, in_channels=3)
        count = sum(p.numel() for p in encoder.parameters())
        self.assertEqual(_table_parameters(3), KNOWN_TOTAL - CLASSIFIER)
        self.assertEqual(count, KNOWN_TOTAL - CLASSIFIER)
        # one input channel changes only the stem: 2 * 32 * 9 fewer weights
        single = sum(p.numel() for p in MobileNetV2Encoder(spatial_dims=2, in_channels=1).parameters())
        self.assertEqual(count - single, 2 * 32 * 9)

    def test_3d(self):
        encoder = MobileNetV2Encoder(spatial_dims=3, in_channels=1)
        features = encoder(torch.randn(2, 1, 32, 32, 64))
        self.assertEqual([tuple(f.shape[1:]) for f in features][-1], (1280, 1, 1, 2))
        self.assertEqual(tuple(features[0].shape), (2, 16, 16, 16, 32))

    @parameterized.expand([[24, 24, 1, True], [24, 24, 2, False], [16, 24, 1, False]])
    def test_inverted_residual(self, c_in, c_out, stride, residual):
        block = InvertedResidual(2, c_in, c_out, stride, 6).eval()
        convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
        self.assertEqual([m.groups for m in convs], [1, c_in * 6, 1])  # expansion, depthwise, projection
        self.assertEqual(convs[1].stride, (stride, stride))
        # a zero projection leaves the shortcut alone: the input where there is one, zeros where there is none
        projection: Any = block.conv[-1]
        last_norm = projection[1]
        torch.nn.init.zeros_(last_norm.weight)
        torch.nn.init.zeros_(last_norm.bias)
        x = torch.randn(2, c_in, 8, 8)
        with torch.no_grad():
            y = block(x)
        torch.testing.assert_close(y, x if residual else torch.zeros(2, c_out, 8 // stride, 8 // stride))
        self.assertEqual(len(InvertedResidual(2, 32, 16, 1, 1).conv), 2)  # t = 1: no expansion layer

    @parameterized.expand(
        [
            [{"pretrained": True}, "pretrained"],
            [{"spatial_dims": 1}, "spatial_dims"],
            [{"in_channels": 0}, "in_channels"],
        ]
    )
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            MobileNetV2Encoder(**kwargs)
        with self.assertRaisesRegex(ValueError, "stride"):
            InvertedResidual(2, 8, 8, 3, 6)


class TestUNetMobileNetV2(unittest.TestCase):
    def test_build_network_shapes(self):
        net = build_network("unet-mobilenetv2", in_channels=1, out_channels=3, decoder_channels=(32, 16, 16, 8, 8))
        self.assertIsInstance(net, FlexibleUNet)
        self.assertIsInstance(net.encoder, MobileNetV2Encoder)
        net.eval()
        for size in ((64, 64), (96, 128)):
            with torch.no_grad():
                self.assertEqual(tuple(net(torch.randn(2, 1, *size)).shape), (2, 3, *size))

    def test_trains_one_step(self):
        torch.manual_seed(0)
        net: Any = build_network("unet-mobilenetv2", in_channels=1, out_channels=1, decoder_channels=(32, 16, 16, 8, 8))
        x = torch.randn(4, 1, 64, 64)
        y = (x > 0.5).float()
        loss_fn = DMLoss(sigmoid=True)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
        stem = net.encoder.stages[0][0].weight.detach().clone()
        before = loss_fn(net(x), y)
        optimizer.zero_grad()
        before.backward()
        optimizer.step()
        after = loss_fn(net(x), y)
        self.assertTrue(torch.isfinite(after))
        self.assertLess(after.item(), before.item())
        self.assertFalse(torch.equal(stem, net.encoder.stages[0][0].weight))


if __name__ == "__main__":
    unittest.main()
