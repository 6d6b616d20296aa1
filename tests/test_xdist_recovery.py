"""A crashing test fails the run instead of hanging it (``tests/xdist_recovery.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
CONFTEST = "import xdist_recovery\n\ndef pytest_configure(config):\n    xdist_recovery.install()\n"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_that_dies_is_reported_and_the_run_ends(tmp_path, workers):
    # xdist 3.8 alone hangs on these files with -n 1 (pytest-xdist issues 784, 1378)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_1_dies.py").write_text(
        "import os\n\ndef test_before():\n    pass\n\n"
        "def test_dies():\n    os.abort()\n\ndef test_after():\n    pass\n"
    )
    (tmp_path / "test_2_one.py").write_text("def test_alone():\n    pass\n")
    (tmp_path / "test_3_two.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", str(workers), "--dist", "loadfile",
         "-p", "no:cacheprovider", "-o", "pythonpath=" + str(TESTS), "-q", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    tail = run.stdout[-2000:]
    assert run.returncode == 1, tail
    assert "1 failed, 5 passed" in tail, tail  # the crash once; every other test ran once
    assert "test_1_dies.py::test_dies" in tail, tail
