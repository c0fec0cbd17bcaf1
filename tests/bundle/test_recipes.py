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
"""The label-mode table: each mode's targets on hand-made data, caching, the loss check and the teacher batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import CacheDataset
from monai.transforms import Compose, Lambdad, Randomizable

from monai_dml.bundle import (
    LABEL_RECIPES,
    LabelMode,
    LabelTargetsd,
    PrepareBatchTeacher,
    RandLabelTargetsd,
    check_recipe,
    label_targets,
)
from monai_dml.losses import DMLCELoss, KDLoss

# three binary raters on four pixels: agreement 3/3, 2/3, 1/3, 0/3
RATERS = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]).reshape(3, 1, 4)


def test_every_mode_has_one_recipe():
    assert set(LABEL_RECIPES) == {m.value for m in LabelMode}
    assert LABEL_RECIPES["kd"].loss is KDLoss and dict(LABEL_RECIPES["kd"].extra_keys) == {"teacher": "bilinear"}
    assert all(r.loss is DMLCELoss for m, r in LABEL_RECIPES.items() if m != "kd")
    assert [m for m, r in LABEL_RECIPES.items() if r.random] == ["random"]


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("majority", [1.0, 1.0, 0.0, 0.0]),  # more than half the raters
        ("uniform", [1.0, 2 / 3, 1 / 3, 0.0]),  # the raters' mean
        ("raters", [1.0, 2 / 3, 1 / 3, 0.0]),
    ],
)
def test_fusion_modes_write_the_fused_raters(mode, expected):
    out = label_targets(mode)({"raters": RATERS})
    np.testing.assert_allclose(np.asarray(out["label"]).ravel(), expected, atol=1e-6)


def test_hard_is_one_hot_of_the_integer_label_and_binary_is_left_alone():
    label = torch.tensor([[[0, 2], [1, 0]]])
    out = label_targets("hard", num_classes=3)({"label": label})["label"]
    expected = [[[1, 0], [0, 1]], [[0, 0], [1, 0]], [[0, 1], [0, 0]]]
    np.testing.assert_array_equal(np.asarray(out), expected)
    binary = torch.tensor([[[0.0, 1.0]]])
    assert torch.equal(torch.as_tensor(label_targets("hard")({"label": binary})["label"]), binary)


def test_ls_smooths_uniformly_over_the_classes():
    out = label_targets("ls", num_classes=3, ls_epsilon=0.1)({"label": torch.tensor([[[2, 0]]])})["label"]
    hi, lo = 1 - 0.1 + 0.1 / 3, 0.1 / 3  # (1 - eps) y + eps / C
    np.testing.assert_allclose(np.asarray(out)[:, 0, :], [[lo, hi], [lo, lo], [hi, lo]], atol=1e-6)


def test_only_the_random_rater_is_random_and_the_rest_is_cached():
    assert isinstance(label_targets("random"), RandLabelTargetsd)
    for mode in ("majority", "uniform", "weighted", "staple", "hard", "ls"):
        targets = label_targets(mode)
        assert type(targets) is LabelTargetsd and not isinstance(targets, Randomizable), mode
    calls = []
    count = Lambdad("raters", lambda x: (calls.append(1), x)[1])
    data = [{"raters": RATERS.clone()} for _ in range(3)]
    cached = CacheDataset(data, Compose([count, label_targets("staple")]), progress=False)
    assert len(calls) == 3 and all("label" in cached._cache[i] for i in range(3))  # fused while caching
    for _ in range(2):
        [cached[i] for i in range(3)]
    assert len(calls) == 3  # two epochs later, nothing recomputed
    random = CacheDataset(data, Compose([label_targets("random")]), progress=False)
    assert all("label" not in random._cache[i] for i in range(3))  # the rater is drawn per epoch


def test_random_rater_draws_each_rater():
    targets = label_targets("random").set_random_state(0)
    drawn = {tuple(np.asarray(targets({"raters": RATERS})["label"]).ravel()) for _ in range(60)}
    assert drawn == {tuple(r.ravel().tolist()) for r in RATERS.numpy()}


@pytest.mark.parametrize("key, value", [("label_mode", "soft"), ("ls_method", "gauss"), ("ls_epsilon", 1.5)])
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"'{key}'"):
        label_targets(**{"label_mode": "ls", key: value})


def test_check_recipe_names_the_loss_key():
    assert check_recipe("uniform", DMLCELoss(sigmoid=True))
    assert check_recipe("KD", KDLoss(softmax=True))
    with pytest.raises(ValueError, match="'loss'.*KDLoss.*kd.json"):
        check_recipe("kd", DMLCELoss(softmax=True))
    with pytest.raises(ValueError, match="'loss'.*DMLCELoss"):
        check_recipe("hard", KDLoss(softmax=True))


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_teacher_batch_reaches_kd_loss_as_its_own_key(temperature):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, 6, generator=g)
    onehot = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 6, 6), generator=g), 3).permute(0, 3, 1, 2).float()
    teacher = torch.softmax(torch.randn(2, 3, 6, 6, generator=g), dim=1)
    image, target = PrepareBatchTeacher()({"image": x, "label": onehot, "teacher": teacher}, device="cpu")
    assert torch.equal(image, x) and torch.equal(target[0], onehot) and torch.equal(target[1], teacher)
    loss = KDLoss(softmax=True, temperature=temperature)
    torch.testing.assert_close(loss(x, target), loss(x, onehot, teacher))
    # the label comes first: with a zero label weight only the teacher matters
    only_teacher = KDLoss(softmax=True, label_weight=0.0, teacher_weight=1.0)
    torch.testing.assert_close(only_teacher(x, (onehot, teacher)), only_teacher(x, (1 - onehot, teacher)))
    with pytest.raises(KeyError, match="'teacher'"):
        PrepareBatchTeacher()({"image": x, "label": onehot})
    with pytest.raises(TypeError, match="pair"):
        loss(x, onehot)
