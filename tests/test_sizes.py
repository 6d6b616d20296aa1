"""Issue 16: no module over 400 lines and no function over 80 lines in the package
(``tools/check_sizes.py``, which also reports them from the command line)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _check_sizes():
    spec = importlib.util.spec_from_file_location("check_sizes", ROOT / "tools" / "check_sizes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_module_or_function_over_the_limits():
    found = _check_sizes().find([ROOT / "ssb_beamline"])
    assert found == [], "split these into named pieces:\n" + "\n".join(found)


def test_the_check_finds_a_long_function_and_module(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(81))
    (tmp_path / "long.py").write_text(f'def f():\n    """Doc."""\n{body}\n' + "#\n" * 320)
    found = _check_sizes().find([tmp_path])
    assert any("module has" in f for f in found)
    assert any(": f has 82 lines of code" in f for f in found)
