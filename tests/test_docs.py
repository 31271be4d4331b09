"""The documentation site builds with warnings as errors, and its examples run as written."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
#: Shell lines the quickstart shows for setting up, which the test environment already did.
#: (Only ```bash blocks run; ```sh blocks show commands too long for the tests, or benchmarks,
#: and ```py blocks Python examples too long to run, as in the README.)
SETUP = ("./dev ", "source ")


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def test_site_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(BIN))
    if mkdocs is None:
        pytest.fail("mkdocs is not installed: install the project's 'test' extra")
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": f"{BIN}:/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    # nothing silenced: every warning (a docstring griffe cannot read, a broken link) fails
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert not warnings, "\n".join(warnings)
    assert (tmp_path / "site" / "reference" / "protocol" / "index.html").exists()


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_examples_run(page, tmp_path, monkeypatch):
    text = page.read_text()
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "docs"}  # one session per page, blocks in turn
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        exec(compile(block, str(page), "exec"), namespace)
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if not command or command.startswith(SETUP):
                continue
            argv = shlex.split(command)
            assert argv[0] == "mktsim", f"{page.name}: unexpected shell line {line!r}"
            done = subprocess.run(
                [str(BIN / "mktsim"), *argv[1:]], capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, f"{line!r}: {done.stderr}"
