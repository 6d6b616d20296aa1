"""A worker that crashes must not hang the test session (pytest-xdist 3.8, ``--dist loadfile``).

``make test`` distributes whole files (``--dist loadfile``). When a worker dies
(e.g. a C library aborts), xdist 3.8's ``LoadScopeScheduling.remove_node`` puts
the dead worker's *whole* workload back on the queue, files it had finished
included: each is later sent as an empty batch that never completes, and once
the queue holds only those, every worker waits for work and the controller for
results, for ever (pytest-xdist issue 1378; seen here in a CI run, 2026-12-07).
A replacement worker given a file of one test also waits for a second test that
never comes (issue 1327). Both fixes are merged upstream or pending, but not in
a release this project can install, hence these lines: only the files with tests
left are put back, the test the worker died in is reported failed (by xdist) and
not run again, and a worker left with one test is given more work or told to
stop. The rest of the run then goes on and the crash is reported as a failure.
"""

from __future__ import annotations

from typing import Any


def _pending_only(workload: dict[str, dict[str, bool]], crashed: str) -> dict:
    """The work units that still have tests to run, ``crashed`` marked done."""
    for unit in workload.values():
        if crashed in unit:
            unit[crashed] = True
    return {scope: unit for scope, unit in workload.items() if not all(unit.values())}


def install() -> bool:
    """Patch xdist's file scheduler (idempotent); False if xdist is not installed."""
    try:
        from xdist.scheduler.loadscope import LoadScopeScheduling
    except ImportError:
        return False
    if getattr(LoadScopeScheduling, "_ssb_recovery", False):
        return True
    reschedule = LoadScopeScheduling._reschedule

    def remove_node(self: Any, node: Any) -> str | None:
        workload = self.assigned_work.pop(node)
        if not self._pending_of(workload):
            return None
        crashed = next(
            nodeid for unit in workload.values() for nodeid, done in unit.items() if not done
        )
        self.workqueue.update(_pending_only(workload, crashed))
        for other in self.assigned_work:
            self._reschedule(other)
        return crashed

    def _reschedule(self: Any, node: Any) -> None:
        reschedule(self, node)
        if node.shutting_down or node not in self.assigned_work:
            return
        if self._pending_of(self.assigned_work[node]) == 1:  # it waits for a next test
            if self.workqueue:
                self._assign_work_unit(node)
            else:
                node.shutdown()

    LoadScopeScheduling.remove_node = remove_node
    LoadScopeScheduling._reschedule = _reschedule
    LoadScopeScheduling._ssb_recovery = True
    return True
