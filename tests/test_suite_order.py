"""The suite's schedule: the files listed to start first exist, and keep their tests together."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# by path: in the full suite the name "conftest" may be another folder's conftest
_SPEC = importlib.util.spec_from_file_location("_suite_conftest", ROOT / "tests" / "conftest.py")
conftest = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(conftest)


def test_every_file_listed_to_start_first_exists_once():
    listed = conftest.LONGEST_FIRST
    missing = [path for path in listed if not (ROOT / path).is_file()]
    assert not missing, f"renamed or removed test files: update tests/conftest.py {missing}"
    assert len(set(listed)) == len(listed), "a file is listed twice in LONGEST_FIRST"


class _Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def test_listed_files_come_first_each_file_in_its_own_order(monkeypatch):
    monkeypatch.setattr(conftest, "LONGEST_FIRST", ("tests/b.py", "tests/c.py"))
    nodeids = ["tests/a.py::x", "tests/b.py::y[1]", "tests/c.py::z", "tests/b.py::y[2]",
               "tests/d.py::w", "tests/a.py::v"]  # fmt: skip
    items = [_Item(n) for n in nodeids]
    conftest.pytest_collection_modifyitems(None, None, items)
    assert [item.nodeid for item in items] == [
        "tests/b.py::y[1]", "tests/b.py::y[2]", "tests/c.py::z",
        "tests/a.py::x", "tests/d.py::w", "tests/a.py::v",
    ]  # fmt: skip


@pytest.mark.parametrize("option", ["--dist loadfile", "--no-loadscope-reorder"])
def test_make_test_runs_files_whole_in_the_listed_order(option):
    makefile = (ROOT / "Makefile").read_text()
    (line,) = [ln for ln in makefile.splitlines() if "-m pytest" in ln]
    assert option in line
