"""The run's link to its results survives a concurrent metadata write (unit test).

tiled applies a metadata PATCH as read-modify-write on the server: the writer's
stop PATCH, racing the results link, can write back metadata without the link.
Here a fake run loses the first link write as that race does.
"""

from __future__ import annotations

from ssb_beamline.storage.result_link import link_run
from ssb_beamline.storage.results import LINK_ATTEMPTS, TiledResultSink


class _Run:
    """A raw run whose first ``lost`` metadata writes are undone by a concurrent write."""

    def __init__(self, uid: str, lost: int) -> None:
        self.item = {"id": uid}
        self.metadata: dict = {"start": {"uid": uid}}
        self.lost, self.writes = lost, 0

    def update_metadata(self, metadata: dict, drop_revision: bool = False) -> None:
        self.writes += 1
        if self.writes > self.lost:
            self.metadata = {**self.metadata, **metadata}
        else:  # the stop PATCH read the metadata before this write, wrote after it
            self.metadata = {**self.metadata, "stop": {"exit_status": "success"}}


def _link(run: _Run, versions: list[str], path: str) -> None:
    """Link as the sink does (its fresh lookups find this run)."""
    sink = TiledResultSink(results_container=None, runs={run.item["id"]: run})
    link_run(run, versions, path, sink._run_of)


def test_a_lost_link_is_written_again():
    run = _Run("uid-1", lost=1)
    _link(run, ["v1", "v2"], "results/uid-1/v2")
    assert run.writes == 2
    assert run.metadata["results"] == {"latest": "results/uid-1/v2", "versions": ["v1", "v2"]}
    assert run.metadata["stop"] == {"exit_status": "success"}


def test_a_link_kept_being_lost_is_logged_not_raised(caplog):
    run = _Run("uid-2", lost=LINK_ATTEMPTS)
    _link(run, ["v1"], "results/uid-2/v1")
    assert run.writes == LINK_ATTEMPTS
    assert "their link from the run kept being lost" in caplog.text


def test_a_later_version_linked_meanwhile_is_left_alone():
    run = _Run("uid-3", lost=0)
    run.metadata["results"] = {"latest": "results/uid-3/v3", "versions": ["v1", "v2", "v3"]}
    run.update_metadata = lambda metadata, drop_revision=False: None  # another linked v3
    _link(run, ["v1", "v2"], "results/uid-3/v2")
    assert run.metadata["results"]["latest"] == "results/uid-3/v3"
