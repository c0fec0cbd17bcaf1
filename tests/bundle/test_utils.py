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
import os
import pathlib
import re

import pytest

from monai_dml.bundle import (
    as_bool,
    check_fold,
    check_option,
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
