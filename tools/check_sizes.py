"""Report modules over 400 lines and functions over 80 lines in the package (issue 16).

A function's length is its lines without its docstring.

Run ``.venv/bin/python tools/check_sizes.py [paths...]``; exits 1 if any is found.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of the function's docstring (documentation is not counted as code)."""
    first = node.body[0]
    value = first.value if isinstance(first, ast.Expr) else None
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return first.end_lineno - first.lineno + 1
    return 0


def find(roots: list[Path]) -> list[str]:
    """One line per module over the limit and per function over it, under ``roots``."""
    found = []
    for root in roots:
        for path in sorted(root.rglob("*.py") if root.is_dir() else [root]):
            text = path.read_text()
            n = text.count("\n")
            if n > MAX_MODULE_LINES:
                found.append(f"{path}: module has {n} lines (> {MAX_MODULE_LINES})")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = node.end_lineno - node.lineno + 1 - _docstring_lines(node)
                    if length > MAX_FUNCTION_LINES:
                        found.append(
                            f"{path}:{node.lineno}: {node.name} has {length} lines of code "
                            f"(> {MAX_FUNCTION_LINES})"
                        )
    return found


def main(argv: list[str]) -> int:
    """Print what is over the limits under ``argv`` (default the package); 1 if any."""
    found = find([Path(a) for a in argv] or [Path("ssb_beamline")])
    print("\n".join(found) or "no module over 400 lines, no function over 80 lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
