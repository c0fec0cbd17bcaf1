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
"""The upstream patches apply to the installed MONAI, pass their MONAI-style tests there and match monai_dml."""

from __future__ import annotations

import shutil
import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATCHES = sorted((ROOT / "upstream" / "patches").glob("*.patch"))


class TestPatchFiles(unittest.TestCase):
    def test_patches_stand_alone(self):
        self.assertEqual(len(PATCHES), 4, [p.name for p in PATCHES])
        for patch in PATCHES:
            text = patch.read_text()
            added = [line for line in text.splitlines() if line.startswith("+") and not line.startswith("+++")]
            # no monai_dml inside a MONAI pull request, and MONAI's own license header on every new file
            self.assertFalse([line for line in added if "monai_dml" in line], patch.name)
            self.assertEqual(text.count("new file mode"), text.count("+# Copyright (c) MONAI Consortium"), patch.name)
            self.assertTrue(
                (ROOT / "upstream" / "prs" / f"{patch.stem}.md").is_file(), f"PR description of {patch.name}"
            )


@unittest.skipUnless(shutil.which("git"), "needs git")
class TestUpstreamCheck(unittest.TestCase):
    def test_check(self):
        # upstream/check.py: copy the installed monai, git apply every patch, run the patches' tests and the
        # equivalence checks against the patched tree (exit status 0 when all pass)
        done = subprocess.run(
            [sys.executable, str(ROOT / "upstream" / "check.py")], cwd=ROOT, capture_output=True, text=True, timeout=900
        )
        self.assertEqual(done.returncode, 0, f"{done.stdout}\n{done.stderr}"[-6000:])
        self.assertIn("4 patches apply", done.stdout)
        self.assertRegex(done.stderr, r"Ran \d+ tests")


if __name__ == "__main__":
    unittest.main()
