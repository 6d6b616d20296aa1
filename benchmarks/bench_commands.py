"""Wall (and CPU) time of ``runs``, ``show``, ``report``, ``replay``: cold and warm.

Cold: no background tiled server runs for the data directory (``replay`` starts
it; ``runs`` reads the SQLite catalog, ``show`` and ``report`` the catalog and the
result files, and need none). Warm: the same command again (for ``replay``: with
the server it started). One small demo
run (quick preset, 96 px) is stored first in a fresh data directory. ``show``'s
time is also given without the figure drawing (drawn in-process, timed apart).
Goals (issue 15): ``runs`` <= 1 s and ``show`` <= 5 s plus drawing, warm, on a
2-core machine. CPU time is the command's own (user + system) and, apart, the
background server's for the same request(s); on a loaded machine the wall time
also holds waiting for a core (the load average is printed before and after).

Usage: ``python benchmarks/bench_commands.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS = {"runs": 1.0, "show": 5.0}


def _command(args: list[str], env: dict) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ssb_beamline.cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _server_cpu(data: Path) -> float:
    """CPU seconds the data directory's background server has used so far (0 if none)."""
    try:
        pid = json.loads((data / ".server.json").read_text())["pid"]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, KeyError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drawing_seconds(data: Path, uid: str, out: Path) -> float:
    """Time to draw ``show``'s figures of the stored result, in this process."""
    from ssb_beamline.report.run_figures import show_figures
    from ssb_beamline.storage.result_files import open_result_files

    files = open_result_files(data)  # as `show` reads it, without a server
    result = files.read_results(uid)
    files.close()
    show_figures(out, result, "warm-up")  # imports matplotlib, fonts; reads the arrays
    t0 = time.perf_counter()
    show_figures(out, result, "timed")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm repetitions (median)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "out"
        env = {**os.environ, "SSB_DATA_DIR": str(data), "SSB_BACKGROUND_SERVER": "1"}
        env.pop("SSB_TILED_URI", None)
        print("storing one demo run (quick preset, 96 px)...", flush=True)
        _command(["demo", "--preset", "quick", "--size", "96", "--out", str(out / "demo")], env)
        runs = [sys.executable, "-m", "ssb_beamline.cli", "runs", "--json"]
        listing = subprocess.run(runs, env=env, check=True, capture_output=True, text=True).stdout
        uid = json.loads(listing)[-1]["uid"]
        commands = {
            "runs": ["runs"],
            "show": ["show", uid[:8], "--out", str(out / "show")],
            "report": ["report", uid[:8], "--out", str(out / "report")],
            "replay": ["replay", uid[:8], "--dry-run"],
        }
        rows = []
        load_before = os.getloadavg()[0]
        try:
            for name, args in commands.items():
                _command(["serve", "--stop"], env)
                cold = _command(args, env)
                server_before = _server_cpu(data)
                warm = [_command(args, env) for _ in range(options.repeat)]
                server = (_server_cpu(data) - server_before) / options.repeat
                wall = statistics.median(w for w, _ in warm)
                cpu = statistics.median(c for _, c in warm)
                rows.append((name, cold, wall, cpu, server))
            drawing = _drawing_seconds(data, uid, out / "drawn")
        finally:
            _command(["serve", "--stop"], env)
    print(f"\nload average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"{'command':8} {'cold wall':>10} {'cold CPU':>9} {'warm wall':>10} {'warm CPU':>9} "
        f"{'server CPU':>10}  goal"
    )
    for name, (cold_wall, cold_cpu), wall, cpu, server in rows:
        goal = GOALS.get(name)
        if name == "show":
            verdict = f"<= {goal:.0f} s + drawing: {wall - drawing:.2f} s + {drawing:.2f} s " + (
                "met" if wall - drawing <= goal else "NOT met")  # fmt: skip
        elif goal is not None:
            verdict = f"<= {goal:.0f} s: " + ("met" if wall <= goal else "NOT met")
        else:
            verdict = "-"
        print(f"{name:8} {cold_wall:9.2f}s {cold_cpu:8.2f}s {wall:9.2f}s {cpu:8.2f}s "
              f"{server:9.2f}s  {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
