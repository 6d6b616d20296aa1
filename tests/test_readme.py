"""Every ```python block of README.md runs, in order, against the session's tiled server.

A block that needs what a test machine does not have (an EPICS IOC, Redis, a 0MQ
proxy) says so on the line before it, ``<!-- readme-test: skip (why) -->``, and is
reported as skipped with that reason; every other block must run without error.
Each block runs in its own namespace (the README's examples are self-contained),
in a temporary folder, with ``SSB_TILED_URI`` / ``SSB_TILED_API_KEY`` naming the
session's server (as a user's environment would).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((.*)\)\s*-->")

pytestmark = pytest.mark.slow


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason or None)`` of each ```python block (indent removed)."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```python\s*$", lines[i])
        if not fence:
            i += 1
            continue
        indent, start = len(fence.group(1)), i + 1
        previous = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        skip = _SKIP.search(previous)
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        code = "\n".join(ln[indent:] for ln in lines[start:i])
        blocks.append((start + 1, code, skip.group(1) if skip else None))
        i += 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_runnable_python_blocks():
    assert BLOCKS, "no ```python block found in README.md"
    assert any(reason is None for _, _, reason in BLOCKS)
    # the block parser sees a fenced block, its indent and its skip marker
    text = "x\n<!-- readme-test: skip (needs a beamline) -->\n  ```python\n  a = 1\n  ```\n"
    assert python_blocks(text) == [(4, "a = 1", "needs a beamline")]


@pytest.fixture(scope="module")
def readme_env(tiled_server, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSB_TILED_URI", tiled_server.url)
        mp.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
        mp.setenv("SSB_DATA_DIR", str(tiled_server.layout.root))  # its detector folder
        mp.chdir(tmp_path_factory.mktemp("readme"))
        yield


@pytest.mark.parametrize(("line", "code", "skip"), BLOCKS, ids=[f"line{b[0]}" for b in BLOCKS])
def test_readme_block_runs(readme_env, caplog, line, code, skip):
    if skip:
        pytest.skip(f"README.md line {line}: {skip}")
    with caplog.at_level(logging.WARNING, logger="ssb_beamline"):
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": f"readme_line{line}"})
    # a live-analysis step that fails only logs (the run goes on): an example must not
    # do that (it did, with no pixel size in its start document), nor place fewer
    # particles than it asks for
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("ssb_beamline")]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
    assert not [m for m in logged if m.startswith("Placed ")], logged
