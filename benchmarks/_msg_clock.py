"""Where a bluesky scan's wall time goes: per RunEngine message, per frame (bench_epics).

`MsgClock` hooks ``RE.msg_hook``; `print_messages` tabulates several modes' scans.
"""

from __future__ import annotations

import statistics
import time

from rich.console import Console
from rich.table import Table

__all__ = ["MsgClock", "print_messages"]


class MsgClock:
    """Wall time of a scan split by RunEngine message (``RE.msg_hook``), ms per frame.

    The RunEngine handles one message at a time, so the time from one message to the
    next is the cost of the first (for ``wait``: the moves or the exposure it waits
    for). Labels: the command and its object (``read i0``), a ``wait`` by what its
    group waits for (``wait energy,zp_z,det_z``: a move; ``wait detector``: a frame).
    """

    def __init__(self, RE) -> None:
        self.RE, self.totals, self._groups = RE, {}, {}
        self._last: tuple[str, float] | None = None
        RE.msg_hook = self._hook

    def _label(self, msg) -> str:
        obj = getattr(msg.obj, "name", "") if msg.obj is not None else ""
        group = msg.kwargs.get("group")
        if msg.command in ("set", "trigger", "kickoff", "stage", "unstage") and group is not None:
            self._groups.setdefault(group, []).append(obj)
        if msg.command == "wait":
            return "wait " + ",".join(sorted(set(self._groups.pop(group, ["?"]))))
        return f"{msg.command} {obj}".strip()

    def _hook(self, msg) -> None:
        now = time.perf_counter()
        if self._last is not None:
            label, t0 = self._last
            self.totals[label] = self.totals.get(label, 0.0) + now - t0
        self._last = (self._label(msg), now)

    def stop(self) -> dict[str, float]:
        """Unhook; return seconds by label (the last message is not counted)."""
        self.RE.msg_hook = None
        return self.totals


def print_messages(results: dict[str, list[dict]], frames: int, console: Console) -> None:
    """Per-frame scan time by RunEngine message (medians over runs), and CA minus in process."""
    per_frame = {mode: {} for mode in results}
    for mode, runs in results.items():
        labels = {label for run in runs for label in run["msgs"]}
        for label in labels:
            values = [run["msgs"].get(label, 0.0) for run in runs]
            per_frame[mode][label] = 1e3 * statistics.median(values) / frames
    local = per_frame["in process"]
    table = Table(title="the scan by RunEngine message: ms per frame (medians; the messages "
                        f"of a scan / {frames} frames)")  # fmt: skip
    table.add_column("message")
    for mode in per_frame:
        table.add_column(mode, justify="right")
    others = [m for m in per_frame if m != "in process"]
    for mode in others:
        table.add_column(f"{mode} - in process", justify="right")

    def largest(label: str) -> float:
        return -max(p.get(label, 0.0) for p in per_frame.values())

    labels = sorted({label for p in per_frame.values() for label in p}, key=largest)
    rows = [(label, [per_frame[m].get(label, 0.0) for m in per_frame]) for label in labels]
    for label, values in rows:
        if max(values) < 0.05:
            continue
        diffs = [per_frame[m].get(label, 0.0) - local.get(label, 0.0) for m in others]
        table.add_row(label, *(f"{v:.2f}" for v in values), *(f"{d:+.2f}" for d in diffs))
    totals = [sum(p.values()) for p in per_frame.values()]
    table.add_row("total", *(f"{v:.2f}" for v in totals),
                  *(f"{sum(per_frame[m].values()) - totals[0]:+.2f}" for m in others))  # fmt: skip
    console.print(table)
