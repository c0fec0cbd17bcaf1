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
"""The header-only length check of NIfTI files: truncated files fail, every valid way of storing one passes."""

from __future__ import annotations

import gzip
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from monai_dml.data.utils import check_mask_file, check_nifti_length, read_nifti_shape

ARRAY = np.random.default_rng(0).random((12, 10, 6)).astype(np.float32)  # 2880 bytes of data after a 352-byte header


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz"])
def test_intact_files_pass(tmp_path, name):
    path = str(tmp_path / name)
    nib.save(nib.Nifti1Image(ARRAY, np.eye(4)), path)
    assert read_nifti_shape(path) == (12, 10, 6)


def test_gzip_of_several_members_passes(tmp_path):
    """Its trailer holds the last member's length only: the quick test fails and the full read must accept it."""
    single = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(ARRAY, np.eye(4)), str(single))
    raw = gzip.decompress(single.read_bytes())
    assert len(raw) == 352 + ARRAY.nbytes
    multi = tmp_path / "multi.nii.gz"
    multi.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    check_nifti_length(str(multi))
    loaded: Any = nib.load(str(multi))
    np.testing.assert_array_equal(np.asanyarray(loaded.dataobj), ARRAY)


def test_truncated_files_fail_naming_the_file(tmp_path):
    plain = tmp_path / "v.nii"
    nib.save(nib.Nifti1Image(ARRAY, np.eye(4)), str(plain))
    plain.write_bytes(plain.read_bytes()[:-1])  # one byte short: 352 + 2880 - 1
    with pytest.raises(ValueError, match=rf"{plain} is truncated: 3231 bytes, but its header needs 3232"):
        read_nifti_shape(str(plain))
    packed = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(ARRAY, np.eye(4)), str(packed))
    packed.write_bytes(packed.read_bytes()[:-8])  # without its gzip trailer
    with pytest.raises(ValueError, match=rf"{packed} is truncated or corrupt \(EOFError"):
        read_nifti_shape(str(packed))


def test_mask_values(tmp_path):
    path = str(tmp_path / "m.nii.gz")
    nib.save(nib.Nifti1Image(np.array([[0, 1], [1, 0]], np.uint8), np.eye(4)), path)
    assert check_mask_file(path) == (2, 2)
    nib.save(nib.Nifti1Image(np.array([[0, 255], [255, 0]], np.uint8), np.eye(4)), path)
    with pytest.raises(ValueError, match="0/255"):
        check_mask_file(path)
