"""An interactive session starts loading the kernels when it imports the analysis package."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ssb_beamline.analysis import _jit_import
from ssb_beamline.analysis._jit_import import WARM_UP_ENV, wants_warm_up_at_import


@pytest.mark.parametrize(
    ("env", "interactive", "expected"),
    [
        (None, False, False),  # a script, the CLI, a test worker: nothing at import
        (None, True, True),  # a notebook / REPL
        ("import", False, True),
        ("off", True, False),
        ("OFF ", True, False),
    ],
)
def test_who_warms_up_at_import(monkeypatch, env, interactive, expected):
    if env is None:
        monkeypatch.delenv(WARM_UP_ENV, raising=False)
    else:
        monkeypatch.setenv(WARM_UP_ENV, env)
    monkeypatch.setattr(_jit_import, "_interactive", lambda: interactive)
    assert wants_warm_up_at_import() is expected


def test_this_test_process_is_not_interactive(monkeypatch):
    monkeypatch.delenv(WARM_UP_ENV, raising=False)
    assert not wants_warm_up_at_import()


# fed to ``python -i`` on stdin: a REPL session importing the package, then a
# first call that must find every kernel already loaded by the import's thread
SESSION = """
import threading
import numpy as np
import ssb_beamline.analysis as analysis
from ssb_beamline.analysis import _jit
names = [t.name for t in threading.enumerate()]
analysis.warm_up_kernels()
print("SESSION", "ssb-kernel-warm-up" in names, len(_jit.absorbance_table_rows.signatures))
"""


@pytest.mark.slow
def test_a_repl_session_starts_the_warm_up_at_import():
    env = {k: v for k, v in os.environ.items() if k != WARM_UP_ENV}
    out = subprocess.run(
        [sys.executable, "-i", "-q"], input=SESSION, env=env, capture_output=True,
        text=True, timeout=300, check=True,
    )  # fmt: skip
    line = next(ln for ln in out.stdout.splitlines() if "SESSION" in ln)
    assert line.split()[-2:] == ["True", "1"], out.stdout + out.stderr
