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
"""The config helpers of ``monai_dml.bundle.utils``: switches, option and fold checks, checkpoints and inference
inputs. Case names and the metrics report are tested in ``test_outputs.py``, the KD teacher batch in
``test_recipes.py``."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import re

import pytest
import torch

from monai_dml.bundle import (
    as_bool,
    check_fold,
    check_option,
    extend_schedule,
    inference_data,
    require_checkpoint,
    resume_from,
)


def _touch(path: pathlib.Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return str(path)


# -- as_bool -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        ("true", True),
        ("False", False),
        ("0", False),
        ("1", True),
        ("yes", True),
        ("NO", False),
        ("on", True),
        ("Off", False),
        (" TRUE ", True),
        (1, True),
        (0, False),
        (1.0, True),
        (0.0, False),
        (True, True),
        (False, False),
    ],
)
def test_as_bool_reads_the_usual_spellings(value, expected):
    result = as_bool(value, "resume")
    assert result is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", 2, -1, 0.5, None, "truee"])
def test_as_bool_rejects_anything_else_naming_the_key(value):
    with pytest.raises(ValueError, match=re.escape("'sync_batch'")):
        as_bool(value, "sync_batch")


# -- check_option ------------------------------------------------------------------------------------------------------
def test_check_option_lower_cases_a_known_option():
    assert check_option("HARD", ("hard", "ls", "kd"), "label_mode") == "hard"
    assert check_option("ls", ["hard", "ls"], "label_mode") == "ls"


def test_check_option_error_names_key_value_and_options():
    with pytest.raises(ValueError) as err:
        check_option("soft", ("hard", "ls"), "label_mode")
    message = str(err.value)
    assert "'label_mode'" in message and "'soft'" in message and "['hard', 'ls']" in message


# -- check_fold --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fold", [0, 1, 2, 3, 4])
def test_check_fold_accepts_every_fold_of_the_split(fold):
    assert check_fold(fold, 5) == fold


def test_check_fold_reads_text_from_the_command_line():
    result = check_fold("3", 5)
    assert result == 3 and isinstance(result, int)


@pytest.mark.parametrize("fold", [-1, 5, 17, "x", "", "5", "-1", True, False, 2.5, 2.0, None, [1]])
def test_check_fold_rejects_naming_the_key(fold):
    with pytest.raises(ValueError, match=re.escape("'fold'")):
        check_fold(fold, 5)


def test_check_fold_names_the_key_for_a_doubled_minus_sign():
    with pytest.raises(ValueError, match=re.escape("'fold'")):
        check_fold("--1", 5)


def test_check_fold_follows_num_folds():
    assert check_fold(2, 3) == 2
    with pytest.raises(ValueError, match=re.escape("'fold'")):
        check_fold(3, 3)


# -- require_checkpoint / resume_from ----------------------------------------------------------------------------------
def test_require_checkpoint_returns_an_existing_file(tmp_path):
    path = _touch(tmp_path / "models" / "model.pt")
    assert require_checkpoint(path) == path
    result = require_checkpoint(pathlib.Path(path))
    assert result == path and isinstance(result, str)


def test_require_checkpoint_names_the_key_and_path(tmp_path):
    missing = str(tmp_path / "models" / "model.pt")
    with pytest.raises(FileNotFoundError) as err:
        require_checkpoint(missing)
    assert "'checkpoint'" in str(err.value) and missing in str(err.value)
    with pytest.raises(FileNotFoundError, match=re.escape("'teacher_checkpoint'")):
        require_checkpoint(missing, key="teacher_checkpoint")


def test_require_checkpoint_rejects_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape("'checkpoint'")):
        require_checkpoint(tmp_path)


@pytest.mark.parametrize("resume", [False, "false", "0", 0, "no"])
def test_resume_from_is_false_without_looking_for_the_file(tmp_path, resume):
    assert resume_from(resume, tmp_path / "absent.pt") is False


@pytest.mark.parametrize("resume", [True, "true", "1", 1, "yes"])
def test_resume_from_needs_the_checkpoint(tmp_path, resume):
    path = tmp_path / "checkpoint_last.pt"
    with pytest.raises(FileNotFoundError, match=re.escape("'resume'")):
        resume_from(resume, path)
    _touch(path)
    assert resume_from(resume, path) is True


def test_resume_without_a_checkpoint_says_resume_is_a_switch(tmp_path):
    path = str(tmp_path / "models" / "checkpoint_last.pt")
    with pytest.raises(FileNotFoundError) as err:
        resume_from(True, path)
    message = str(err.value)
    assert path in message and "switch (true/false)" in message and "not a path" in message
    assert "--bundle_root" in message  # the way to point it at an earlier run
    assert "override 'resume' with the path" not in message  # the old advice, which 'resume' does not accept


# -- require_checkpoint(image_size=...) --------------------------------------------------------------------------------
def _saved(path: pathlib.Path, **extra) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"weight": torch.zeros(1)}, **extra}, path)
    return str(path)


def test_require_checkpoint_warns_at_another_image_size(tmp_path, caplog):
    path = _saved(tmp_path / "model.pt", image_size=32)
    with caplog.at_level(logging.WARNING, logger="monai_dml.bundle.utils"):
        assert require_checkpoint(path, image_size=32) == path
        assert require_checkpoint(path, image_size=[32, 32]) == path  # the same size, spelt per dimension
        assert caplog.records == []
        assert require_checkpoint(path, image_size=64) == path
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "'image_size'" in message and path in message and "32" in message and "64" in message
    assert "--image_size 32" in message


def test_require_checkpoint_without_a_saved_size_or_without_a_size(tmp_path, caplog):
    old = _saved(tmp_path / "old.pt")  # written before the size travelled with the model
    with caplog.at_level(logging.WARNING, logger="monai_dml.bundle.utils"):
        assert require_checkpoint(old, image_size=64) == old
        assert require_checkpoint(_saved(tmp_path / "new.pt", image_size=32)) is not None  # no size asked: no check
    assert caplog.records == []


def test_require_checkpoint_names_an_unloadable_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"half a checkpoint")
    with pytest.raises(ValueError) as err:
        require_checkpoint(path, image_size=32)
    assert "'checkpoint'" in str(err.value) and str(path) in str(err.value)


# -- extend_schedule ---------------------------------------------------------------------------------------------------
LR0, POWER = 0.1, 2.0


def _schedule(total_iters: int) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.PolynomialLR]:
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=LR0)
    return optimizer, torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total_iters, power=POWER)


def _run_epochs(optimizer, scheduler, epochs: int) -> list[float]:
    """The learning rate of each epoch, the scheduler stepped at every epoch end (LrScheduleHandler)."""
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def _resumed(saved_optimizer, saved_scheduler, total_iters: int):
    """A new run built with ``total_iters`` epochs that loads the saved states (what CheckpointLoader does)."""
    optimizer, scheduler = _schedule(total_iters)
    optimizer.load_state_dict(saved_optimizer.state_dict())
    scheduler.load_state_dict(saved_scheduler.state_dict())
    return optimizer, scheduler


def test_extend_schedule_continues_a_longer_run(tmp_path):
    optimizer, scheduler = _schedule(4)
    # lr0 (1 - e/4)^2 for e = 0..3: 0.1, 0.05625, 0.025, 0.00625; then 0 after the 4th epoch
    assert _run_epochs(optimizer, scheduler, 4) == pytest.approx([0.1, 0.05625, 0.025, 0.00625])
    assert optimizer.param_groups[0]["lr"] == 0.0
    stale = _resumed(optimizer, scheduler, 6)
    assert _run_epochs(*stale, 2) == [0.0, 0.0]  # what a bare CheckpointLoader gives: the restored end of the schedule
    resumed = _resumed(optimizer, scheduler, 6)
    assert extend_schedule(resumed[1], 6) is resumed[1]
    # the rest of a 6-epoch schedule: epochs 5 and 6 at lr0 (1 - 4/6)^2 = 0.1/9 and lr0 (1 - 5/6)^2 = 0.1/36
    assert _run_epochs(*resumed, 2) == pytest.approx([0.1 / 9, 0.1 / 36])
    assert resumed[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert resumed[1].get_last_lr() == pytest.approx([0.0], abs=1e-12)


def test_extend_schedule_leaves_an_interrupted_run_unchanged():
    optimizer, scheduler = _schedule(4)
    _run_epochs(optimizer, scheduler, 2)
    resumed = _resumed(optimizer, scheduler, 4)
    extend_schedule(resumed[1], "4")  # command-line values arrive as text
    assert _run_epochs(*resumed, 2) == pytest.approx([0.025, 0.00625])  # epochs 3 and 4 of the uninterrupted run
    fresh = _schedule(3)
    extend_schedule(fresh[1], 3)  # a run that starts from scratch
    assert _run_epochs(*fresh, 3) == pytest.approx([0.1, 0.1 * (2 / 3) ** 2, 0.1 * (1 / 3) ** 2])


def test_extend_schedule_refuses_fewer_epochs_than_done():
    optimizer, scheduler = _schedule(4)
    _run_epochs(optimizer, scheduler, 3)
    with pytest.raises(ValueError, match=r"'epochs'.*3 epochs done.*larger than 3"):
        extend_schedule(scheduler, 2)


@pytest.mark.parametrize("epochs", [0, -1, "ten", 2.5, True, None])
def test_extend_schedule_rejects_a_bad_epoch_count(epochs):
    with pytest.raises(ValueError, match=re.escape("'epochs'")):
        extend_schedule(_schedule(4)[1], epochs)


def test_extend_schedule_leaves_other_schedulers_as_restored():
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=LR0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    optimizer.step()
    scheduler.step()
    assert extend_schedule(scheduler, 10) is scheduler
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_resume_from_rejects_an_unreadable_switch(tmp_path):
    path = _touch(tmp_path / "checkpoint_last.pt")
    with pytest.raises(ValueError, match=re.escape("'resume'")):
        resume_from("maybe", path)


# -- inference_data ----------------------------------------------------------------------------------------------------
def test_inference_data_lists_the_nifti_files_of_a_folder_sorted(tmp_path):
    folder = tmp_path / "images"
    b = _touch(folder / "b.nii.gz")
    a = _touch(folder / "a.nii")
    c = _touch(folder / "c.nii.gz")
    _touch(folder / "notes.txt")
    _touch(folder / "._a.nii.gz")  # macOS resource fork
    (folder / "d.nii.gz").mkdir()  # a folder, not an image
    assert inference_data(folder) == [{"image": a}, {"image": b}, {"image": c}]
    assert inference_data(str(folder), image_key="img") == [{"img": a}, {"img": b}, {"img": c}]


def test_inference_data_takes_a_single_file(tmp_path):
    path = _touch(tmp_path / "volume-3.nii")
    assert inference_data(path) == [{"image": path}]
    assert inference_data(pathlib.Path(path)) == [{"image": path}]


def test_inference_data_resolves_a_json_list_against_its_folder(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    lists.mkdir()
    absolute = str(tmp_path / "elsewhere" / "y.nii.gz")
    entries = [{"image": "imgs/x.nii.gz", "case": "x"}, {"image": absolute, "case": "y"}]
    (lists / "data.json").write_text(json.dumps(entries))
    monkeypatch.chdir(tmp_path)  # a relative JSON path: entries are still taken from the JSON's folder
    assert inference_data(os.path.join("lists", "data.json")) == [
        {"image": os.path.join(str(lists), "imgs", "x.nii.gz"), "case": "x"},
        {"image": absolute, "case": "y"},
    ]


@pytest.mark.parametrize("section", ["testing", "validation"])
def test_inference_data_reads_the_testing_section(tmp_path, section):
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({section: [{"image": "a.nii.gz"}, {"image": "sub/b.nii.gz"}]}))
    assert inference_data(path) == [
        {"image": os.path.join(str(tmp_path), "a.nii.gz")},
        {"image": os.path.join(str(tmp_path), "sub", "b.nii.gz")},
    ]


def test_inference_data_prefers_testing_over_validation(tmp_path):
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"validation": [{"image": "v.nii.gz"}], "testing": [{"image": "t.nii.gz"}]}))
    assert inference_data(path) == [{"image": os.path.join(str(tmp_path), "t.nii.gz")}]


def test_inference_data_errors_name_input_dir(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape("'input_dir'")):
        inference_data(empty)
    only_text = tmp_path / "text"
    _touch(only_text / "readme.txt")
    with pytest.raises(FileNotFoundError, match=re.escape("'input_dir'")):
        inference_data(only_text)
    with pytest.raises(FileNotFoundError, match=re.escape("'input_dir'")):
        inference_data(tmp_path / "absent")


@pytest.mark.parametrize(
    "content",
    [
        [{"label": "a.nii.gz"}],
        [{"image": "a.nii.gz"}, {"label": "b.nii.gz"}],
        {"training": [{"image": "a.nii.gz"}]},
        {"testing": {"image": "a.nii.gz"}},
        ["a.nii.gz"],
    ],
)
def test_inference_data_rejects_a_json_without_image_entries(tmp_path, content):
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=re.escape("'input_dir'")):
        inference_data(path)
