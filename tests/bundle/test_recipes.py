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
"""The label-mode table (``monai_dml.bundle.recipes``): each mode's target on hand-made data, what ``CacheDataset``
caches, the loss check and the teacher batch of KD."""

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
    label_recipe,
    label_targets,
)
from monai_dml.losses import DMLCELoss, KDLoss

# three binary raters on four pixels: per pixel the votes are [1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]
RATERS = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]).reshape(3, 1, 4)
DETERMINISTIC = [m.value for m in LabelMode if m != LabelMode.RANDOM]


def _label(mode: str, data: dict, **kwargs) -> np.ndarray:
    return np.asarray(label_targets(mode, **kwargs)(data)["label"])


# -- the table ---------------------------------------------------------------------------------------------------------
def test_every_mode_has_one_recipe():
    assert set(LABEL_RECIPES) == {m.value for m in LabelMode}
    for mode in LabelMode:
        assert label_recipe(mode.value) is LABEL_RECIPES[mode]
        assert label_recipe(mode.value.upper()) is LABEL_RECIPES[mode]  # any case, as from the command line


def test_recipe_losses_keys_and_randomness():
    assert LABEL_RECIPES["kd"].loss is KDLoss
    assert all(r.loss is DMLCELoss for m, r in LABEL_RECIPES.items() if m != "kd")
    assert dict(LABEL_RECIPES["kd"].extra_keys) == {"teacher": "bilinear"}
    fusions = ("majority", "random", "uniform", "weighted", "staple", "raters")
    assert all(dict(LABEL_RECIPES[m].extra_keys) == {"raters": "nearest"} for m in fusions)
    assert all(dict(LABEL_RECIPES[m].extra_keys) == {} for m in ("hard", "ls"))
    assert [m for m in LABEL_RECIPES if isinstance(label_targets(m), RandLabelTargetsd)] == ["random"]


def test_label_recipe_limits_to_the_supported_modes():
    assert label_recipe("ls", supported=("hard", "ls")) is LABEL_RECIPES["ls"]
    with pytest.raises(ValueError, match="'label_mode'"):
        label_recipe("kd", supported=("hard", "ls"))
    with pytest.raises(ValueError, match="'label_mode'"):
        label_recipe("soft")


# -- the targets of each mode on hand-made data ------------------------------------------------------------------------
def test_majority_is_more_than_half_the_raters():
    np.testing.assert_array_equal(_label("majority", {"raters": RATERS}).ravel(), [1.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("mode", ["uniform", "raters"])
def test_uniform_is_the_rater_mean(mode):
    np.testing.assert_allclose(_label(mode, {"raters": RATERS}).ravel(), [1.0, 2 / 3, 1 / 3, 0.0], atol=1e-6)


def test_raters_of_integer_maps_average_their_one_hot():
    # KiTS annotations: pixel 0 voted 0, 2, 2; pixel 1 voted 1 by all three
    maps = torch.tensor([[0, 1], [2, 1], [2, 1]]).reshape(3, 1, 2)
    out = _label("raters", {"raters": maps}, num_classes=3)
    np.testing.assert_allclose(out[:, 0], [[1 / 3, 0.0], [0.0, 1.0], [2 / 3, 0.0]], atol=1e-6)


def test_weighted_is_the_mean_weighted_by_dice_to_the_majority():
    # majority [1, 1, 0, 0]; Dice of each rater to it: 2*2/(3+2) = 4/5, 1, 2*1/(1+2) = 2/3; sum 37/15,
    # so the normalised weights are 12/37, 15/37, 10/37
    expected = [1.0, (12 + 15) / 37, 12 / 37, 0.0]
    np.testing.assert_allclose(_label("weighted", {"raters": RATERS}).ravel(), expected, atol=1e-6)


@pytest.mark.parametrize("mode", ["majority", "uniform", "weighted", "staple", "raters"])
def test_unanimous_raters_give_their_mask(mode):
    same = torch.tensor([1.0, 0.0, 1.0, 0.0]).reshape(1, 1, 4).repeat(3, 1, 1)
    np.testing.assert_allclose(_label(mode, {"raters": same}).ravel(), [1.0, 0.0, 1.0, 0.0], atol=1e-5)


def test_staple_follows_the_majority_on_a_hard_split():
    out = _label("staple", {"raters": RATERS}).ravel()
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out[[0, 3]], [1.0, 0.0], atol=1e-5)  # unanimous pixels
    assert out[1] > 0.5 > out[2]  # two votes of three against one


@pytest.mark.parametrize("mode", ["hard", "kd"])
def test_hard_and_kd_one_hot_the_integer_label(mode):
    label = torch.tensor([[[0, 2], [1, 0]]])  # (1, 2, 2)
    expected = [
        [[1, 0], [0, 1]],  # class 0
        [[0, 0], [1, 0]],  # class 1
        [[0, 1], [0, 0]],  # class 2
    ]
    np.testing.assert_array_equal(_label(mode, {"label": label}, num_classes=3), expected)


def test_hard_leaves_a_binary_label_alone():
    binary = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    for classes in (None, 1):
        np.testing.assert_array_equal(_label("hard", {"label": binary}, num_classes=classes), binary.numpy())


def test_ls_uniform_on_three_classes():
    # LabelSmoothing "uniform": y' = (1 - eps) y + eps / K, K = 3, eps = 0.1
    hi, lo = 1 - 0.1 + 0.1 / 3, 0.1 / 3
    out = _label("ls", {"label": torch.tensor([[[2, 0]]])}, num_classes=3, ls_epsilon=0.1)
    np.testing.assert_allclose(out[:, 0, :], [[lo, hi], [lo, lo], [hi, lo]], atol=1e-6)
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-6)


def test_ls_uniform_on_a_binary_label():
    # the two classes [1 - y, y] smoothed with eps = 0.2: y' = 0.8 y + 0.1, the foreground returned
    out = _label("ls", {"label": torch.tensor([[[0.0, 1.0]]])}, ls_epsilon=0.2)
    np.testing.assert_allclose(out.ravel(), [0.1, 0.9], atol=1e-6)


def test_ls_epsilon_zero_is_the_one_hot():
    out = _label("ls", {"label": torch.tensor([[[1, 0]]])}, num_classes=2, ls_epsilon=0.0)
    np.testing.assert_allclose(out[:, 0, :], [[0.0, 1.0], [1.0, 0.0]], atol=1e-7)


def test_targets_honour_the_keys():
    out = label_targets("uniform", label_key="target", rater_key="masks")({"masks": RATERS})
    assert "label" not in out
    np.testing.assert_allclose(np.asarray(out["target"]).ravel(), [1.0, 2 / 3, 1 / 3, 0.0], atol=1e-6)


def test_random_rater_draws_each_rater():
    targets = label_targets("random").set_random_state(0)
    drawn = {tuple(_label_of(targets)) for _ in range(60)}
    assert drawn == {tuple(r.ravel().tolist()) for r in RATERS.numpy()}


def _label_of(targets: LabelTargetsd) -> list[float]:
    return np.asarray(targets({"raters": RATERS})["label"]).ravel().tolist()


def test_random_rater_is_reproducible_with_a_seed():
    a, b = label_targets("random").set_random_state(7), label_targets("random").set_random_state(7)
    assert [_label_of(a) for _ in range(10)] == [_label_of(b) for _ in range(10)]


@pytest.mark.parametrize(
    "key, value", [("label_mode", "soft"), ("ls_method", "gauss"), ("ls_epsilon", 1.5), ("ls_epsilon", 1.0)]
)
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"'{key}'"):
        label_targets(**{"label_mode": "ls", key: value})


# -- caching -----------------------------------------------------------------------------------------------------------
def test_only_the_random_rater_is_randomizable():
    assert isinstance(label_targets("random"), RandLabelTargetsd)
    assert isinstance(label_targets("random"), Randomizable)
    for mode in DETERMINISTIC:
        targets = label_targets(mode, num_classes=3)
        assert type(targets) is LabelTargetsd and not isinstance(targets, Randomizable), mode


def _counting_cache(mode: str) -> tuple[CacheDataset, list[int]]:
    calls: list[int] = []
    count = Lambdad("raters", lambda x: (calls.append(1), x)[1])
    mark = Lambdad("raters", lambda x: x, overwrite="loaded")  # a deterministic step before the targets
    data = [{"raters": RATERS.clone()} for _ in range(3)]
    return CacheDataset(data, Compose([count, mark, label_targets(mode)]), progress=False), calls


@pytest.mark.parametrize("mode", ["staple", "majority"])
def test_cache_dataset_caches_a_deterministic_target(mode):
    cached, calls = _counting_cache(mode)
    assert len(calls) == 3
    assert all("label" in cached._cache[i] for i in range(3))  # fused while caching
    expected = _label(mode, {"raters": RATERS})
    for _ in range(2):  # two epochs
        for i in range(3):
            np.testing.assert_allclose(np.asarray(cached[i]["label"]), expected, atol=1e-6)
    assert len(calls) == 3  # nothing recomputed


def test_cache_dataset_stops_before_the_random_rater():
    cached, calls = _counting_cache("random")
    assert len(calls) == 3
    # the deterministic steps are cached, the rater is drawn per epoch
    assert all("loaded" in cached._cache[i] and "label" not in cached._cache[i] for i in range(3))
    rows = {tuple(r.ravel().tolist()) for r in RATERS.numpy()}
    assert all(tuple(np.asarray(cached[i]["label"]).ravel().tolist()) in rows for i in range(3))
    assert len(calls) == 3


# -- check_recipe ------------------------------------------------------------------------------------------------------
def test_check_recipe_accepts_the_loss_of_the_mode():
    assert check_recipe("uniform", DMLCELoss(sigmoid=True)) is True
    assert check_recipe("hard", DMLCELoss(softmax=True)) is True
    assert check_recipe("KD", KDLoss(softmax=True)) is True


def test_check_recipe_refuses_dml_ce_for_kd():
    with pytest.raises(ValueError, match="'loss'.*'kd'.*KDLoss.*DMLCELoss.*kd.json"):
        check_recipe("kd", DMLCELoss(softmax=True))


@pytest.mark.parametrize("mode", ["uniform", "hard"])
def test_check_recipe_refuses_kd_loss_without_a_teacher(mode):
    with pytest.raises(ValueError, match=f"'loss'.*'{mode}'.*DMLCELoss.*KDLoss.*Remove configs/kd.json"):
        check_recipe(mode, KDLoss(sigmoid=True))


# -- PrepareBatchTeacher and KDLoss on the pair ------------------------------------------------------------------------
def _kd_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 6, 6, generator=g)
    onehot = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 6, 6), generator=g), 3).permute(0, 3, 1, 2).float()
    teacher = torch.softmax(torch.randn(2, 3, 6, 6, generator=g), dim=1)
    return x, onehot, teacher


def test_prepare_batch_teacher_returns_image_and_the_pair():
    x, onehot, teacher = _kd_batch()
    image, target = PrepareBatchTeacher()({"image": x, "label": onehot, "teacher": teacher, "case": ["a", "b"]})
    assert isinstance(target, tuple) and len(target) == 2
    assert torch.equal(image, x) and torch.equal(target[0], onehot) and torch.equal(target[1], teacher)
    image, (label, soft) = PrepareBatchTeacher("probs")({"image": x, "label": onehot, "probs": teacher}, "cpu")
    assert torch.equal(label, onehot) and torch.equal(soft, teacher)


def test_prepare_batch_teacher_names_the_missing_key():
    x, onehot, _ = _kd_batch()
    with pytest.raises(KeyError, match="'teacher'"):
        PrepareBatchTeacher()({"image": x, "label": onehot})


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_kd_loss_on_the_pair_equals_the_three_argument_call(temperature):
    x, onehot, teacher = _kd_batch(1)
    _, target = PrepareBatchTeacher()({"image": x, "label": onehot, "teacher": teacher})
    loss = KDLoss(softmax=True, temperature=temperature)
    torch.testing.assert_close(loss(x, target), loss(x, onehot, teacher))


def test_kd_loss_pair_puts_the_label_first():
    x, onehot, teacher = _kd_batch(2)
    # with a zero label weight only the teacher matters, with a zero teacher weight only the label
    only_teacher = KDLoss(softmax=True, label_weight=0.0, teacher_weight=1.0)
    torch.testing.assert_close(only_teacher(x, (onehot, teacher)), only_teacher(x, (1 - onehot, teacher)))
    only_label = KDLoss(softmax=True, label_weight=1.0, teacher_weight=0.0)
    torch.testing.assert_close(only_label(x, (onehot, teacher)), only_label(x, (onehot, onehot)))


def test_kd_loss_without_a_teacher_needs_the_pair():
    x, onehot, _ = _kd_batch()
    with pytest.raises(TypeError, match="pair"):
        KDLoss(softmax=True)(x, onehot)
