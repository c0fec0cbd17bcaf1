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
"""
Apply the upstream patches to a copy of the installed MONAI and test them there.

    python upstream/check.py                      # the check the default test suite runs (exit status 0: all pass)
    python upstream/check.py --keep DIR           # the same, leaving the patched tree (one commit per patch) in DIR
    python upstream/check.py --keep DIR --docs MONAI_CHECKOUT   # also copy MONAI's docs/source into the base first
    python upstream/check.py --export DIR         # write the commits of a kept tree back to upstream/patches/

Steps of the check: copy the installed ``monai`` package to a new git tree, check that every patch applies to the
pristine tree on its own (``git apply --check``), apply them all in order (one commit each), then run in one
subprocess that imports the patched MONAI: every test module the patches add (MONAI's ``unittest`` tests) and
``upstream/equivalence.py`` (each upstream class against its monai_dml counterpart on random inputs), and check
that every ``autoclass``/``autofunction`` line of the patches' docs hunks names an object the patched MONAI has.
The ``docs/source`` hunks are not in the wheel: they are skipped when applying (``--exclude=docs/*``) unless the
base has a ``docs/source`` (``--docs``).
"""

from __future__ import annotations

import argparse
import email
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATCHES = HERE / "patches"
PINNED_MONAI = "1.6.1"
# a fixed identity and date, so that --export writes the same bytes for the same change
GIT_ENV = {
    "GIT_AUTHOR_NAME": "monai-dml",
    "GIT_AUTHOR_EMAIL": "monai-dml@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "monai-dml",
    "GIT_COMMITTER_EMAIL": "monai-dml@users.noreply.github.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}
DOCS_MODULES = {"metrics.rst": "monai.metrics", "transforms.rst": "monai.transforms", "losses.rst": "monai.losses"}


def git(tree: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, **GIT_ENV}
    # no signing or hooks from the user's git configuration: the tree is a throwaway
    command = ["git", "-c", "commit.gpgsign=false", "-c", f"core.hooksPath={os.devnull}", *args]
    done = subprocess.run(command, cwd=tree, env=env, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {tree}:\n{done.stdout}{done.stderr}")
    return done.stdout


def installed_monai() -> Path:
    spec = importlib.util.find_spec("monai")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("MONAI is not installed.")
    return Path(next(iter(spec.submodule_search_locations)))


def patch_files() -> list[Path]:
    return sorted(PATCHES.glob("*.patch"))


def prepare(tree: Path, docs: Path | None) -> None:
    """Copy the installed monai (mtimes kept, so its bytecode cache stays valid) into a git tree: the base commit."""
    source = installed_monai()
    version = (source / "_version.py").read_text()
    if f'"{PINNED_MONAI}"' not in version and f"'{PINNED_MONAI}'" not in version:
        print(f"warning: the patches target MONAI {PINNED_MONAI}; the installed one may differ ({source}).")
    shutil.copytree(source, tree / "monai", copy_function=shutil.copy2)
    if docs is not None:
        shutil.copytree(docs / "docs" / "source", tree / "docs" / "source")
    git(tree, "init", "-q")
    (tree / ".git" / "info" / "exclude").write_text("__pycache__/\n*.pyc\n")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", f"base: monai {PINNED_MONAI}")


def apply_patches(tree: Path, with_docs: bool) -> list[str]:
    """Check each patch on the pristine tree, apply all in order (one commit each); return the added test modules."""
    exclude = [] if with_docs else ["--exclude=docs/*"]
    patches = patch_files()
    if not patches:
        raise RuntimeError(f"no patches in {PATCHES}")
    for patch in patches:  # each applies on its own: a reviewer can take any one of them
        git(tree, "apply", "--check", *exclude, str(patch))
    modules = []
    for patch in patches:
        git(tree, "apply", "--index", *exclude, str(patch))
        subject = " ".join(str(email.message_from_string(patch.read_text())["Subject"] or patch.stem).split())
        git(tree, "commit", "-q", "-m", re.sub(r"^\[PATCH[^\]]*\] ", "", subject))
        for name in git(tree, "show", "--name-only", "--diff-filter=A", "--format=", "HEAD").split():
            if re.fullmatch(r"tests/.*/test_\w+\.py", name):
                modules.append(name[:-3].replace("/", "."))
    return modules


def docs_names() -> list[tuple[str, str]]:
    """(module, name) of every ``autoclass``/``autofunction`` line the patches add to docs/source."""
    names = []
    for patch in patch_files():
        current = None
        for line in patch.read_text().splitlines():
            if line.startswith("+++ b/"):
                current = DOCS_MODULES.get(Path(line[6:]).name) if line.startswith("+++ b/docs/source/") else None
            match = re.match(r"\+\.\. auto(?:class|function):: (\w+)", line)
            if current is not None and match:
                names.append((current, match.group(1)))
    return names


def run_tests(tree: Path, modules: list[str]) -> int:
    """Run the patches' tests and the equivalence checks against the patched tree, in one subprocess."""
    for folder in {Path(*m.split(".")[:-1]) for m in modules}:  # MONAI's tests are packages; the wheel has no tests/
        for part in range(1, len(folder.parts) + 1):
            (tree / Path(*folder.parts[:part]) / "__init__.py").touch()
    names = ",".join(f"{m}:{n}" for m, n in docs_names())
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), str(HERE), str(HERE.parent)]),
        "UPSTREAM_TREE": str(tree),
        "UPSTREAM_DOCS_NAMES": names,
        "PYTHONDONTWRITEBYTECODE": "1",  # keep the tree clean; the copied bytecode cache still serves the imports
    }
    command = [sys.executable, "-m", "unittest", *modules, "equivalence"]
    return subprocess.run(command, cwd=tree, env=env).returncode


def export(tree: Path) -> None:
    """Write each commit after the base of a kept tree as a patch; the existing file names are kept in order."""
    if not (tree / "docs" / "source").is_dir() and any("+++ b/docs/" in p.read_text() for p in patch_files()):
        raise RuntimeError(
            f"{tree} has no docs/source: build it with --keep DIR --docs MONAI_CHECKOUT to keep the docs hunks."
        )
    commits = git(tree, "rev-list", "--reverse", "HEAD").split()[1:]
    names = [p.name for p in patch_files()]
    if len(names) != len(commits):
        names = [f"{i + 1:04d}-patch.patch" for i in range(len(commits))]
        for old in patch_files():
            old.unlink()
    for commit, name in zip(commits, names, strict=True):
        text = git(tree, "format-patch", "--zero-commit", "--no-signature", "--no-numbered", "-1", commit, "--stdout")
        (PATCHES / name).write_text(text)
        print(f"wrote {PATCHES / name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="build the patched tree in this new folder and keep it")
    parser.add_argument("--docs", type=Path, help="a MONAI git checkout whose docs/source joins the base")
    parser.add_argument("--export", type=Path, help="write the commits of a kept tree to upstream/patches/")
    args = parser.parse_args(argv)
    if args.export:
        export(args.export.resolve())
        return 0
    with tempfile.TemporaryDirectory(prefix="monai-upstream-") as scratch:
        tree = args.keep.resolve() if args.keep else Path(scratch)
        tree.mkdir(parents=True, exist_ok=True)
        prepare(tree, args.docs)
        modules = apply_patches(tree, with_docs=args.docs is not None)
        print(f"{len(patch_files())} patches apply to {tree}; running {len(modules)} test modules + equivalence")
        return run_tests(tree, modules)


if __name__ == "__main__":
    sys.exit(main())
