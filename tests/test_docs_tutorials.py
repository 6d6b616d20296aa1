"""The tutorials run as written: every ``python`` code block of each tutorial page is
executed in order (one namespace per group of pages, in a fresh folder), and the
``text`` block captioned "Output" after a code block must be exactly what it printed.

The first three tutorials share their data folder (a run, then reading it, then
replaying it), so they run as one group, in the order the tutorial index gives.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
GROUPS = {
    "xanes": ["first-xanes-scan", "tiled-client", "replay"],
    "tomography": ["tomography"],
}
_BLOCK = re.compile(
    r"^\.\. code-block:: (?P<lang>\w+)\n(?P<options>(?:[ \t]+:[^\n]*\n)*)\n"
    r"(?P<body>(?:(?:[ \t]+[^\n]*)?\n)+)",
    re.MULTILINE,
)

pytestmark = pytest.mark.slow


def code_blocks(text: str) -> list[tuple[str, str, str]]:
    """``(language, options, dedented body)`` of each ``code-block`` of a page."""
    found = []
    for match in _BLOCK.finditer(text):
        lines = match["body"].rstrip("\n").split("\n")
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        body = "\n".join(line[indent:] for line in lines) + "\n"
        found.append((match["lang"], match["options"], body))
    return found


def _steps(pages: list[str]) -> list[tuple[str, str, str | None]]:
    """``(page, code, expected output or None)`` in page order."""
    steps: list[tuple[str, str, str | None]] = []
    for page in pages:
        for lang, options, body in code_blocks((TUTORIALS / f"{page}.rst").read_text()):
            if lang == "python":
                steps.append((page, body, None))
            elif ":caption: Output" in options:
                assert steps and steps[-1][2] is None, f"{page}: an output block without code"
                steps[-1] = (steps[-1][0], steps[-1][1], body)
    return steps


def _close_everything(namespace: dict) -> None:
    """Stop what a failed tutorial left open (sessions, stores, servers)."""
    for value in namespace.values():
        # only this package's objects: getattr on a tiled client node is a request
        if not type(value).__module__.startswith("ssb_beamline"):
            continue
        if callable(getattr(type(value), "close", None)):
            with contextlib.suppress(Exception):
                value.close()


@pytest.mark.parametrize("group", GROUPS)
def test_tutorial_runs_as_written(group, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSB_TILED_URI", raising=False)
    monkeypatch.delenv("SSB_TILED_API_KEY", raising=False)
    steps = _steps(GROUPS[group])
    assert sum(expected is not None for _, _, expected in steps) >= 2, "too few checked outputs"
    namespace: dict = {"__name__": f"tutorial_{group}"}
    try:
        for page, code, expected in steps:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"docs/tutorials/{page}.rst", "exec"), namespace)
            if expected is not None:
                assert printed.getvalue() == expected, (
                    f"{page}: output differs from the page\n{code}"
                )
    finally:
        _close_everything(namespace)


def test_code_blocks_are_found_with_their_output():
    page = (
        "Text\n\n.. code-block:: python\n\n   print(1)\n\n"
        ".. code-block:: text\n   :caption: Output\n\n   1\n\nMore text.\n"
    )
    assert code_blocks(page) == [
        ("python", "", "print(1)\n"),
        ("text", "   :caption: Output\n", "1\n"),
    ]
