"""Bad input to the analysis worker: each gets a message naming the problem and the fix."""

from __future__ import annotations

import pytest
import zmq
from served import free_port

from ssb_beamline.cli import main
from ssb_beamline.profiles.worker_state import WorkerBusyError, WorkerState
from ssb_beamline.profiles.zmq_link import ZmqUnavailableError, check_zmq_address


def said(capsys) -> str:
    return " ".join(capsys.readouterr().out.split())  # rich wraps long lines


def test_a_worker_pointed_at_a_dead_address_says_so(capsys):
    port = free_port()  # nothing listens there
    code = main(["analyze", "--zmq", f"127.0.0.1:{port}", "--connect-timeout", "1",
                 "--tiled", "http://127.0.0.1:9/api/v1"])  # fmt: skip
    out = said(capsys)
    assert code == 2
    assert f"No 0MQ proxy answered at tcp://127.0.0.1:{port}" in out
    assert "bluesky-0MQ-proxy" in out


def test_a_malformed_address_names_the_form_to_use(capsys):
    assert main(["analyze", "--zmq", "localhost", "--tiled", "http://127.0.0.1:9/api/v1"]) == 2
    assert "HOST:PORT" in said(capsys)


def test_a_live_proxy_address_passes_the_check():
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    try:
        assert check_zmq_address(f"127.0.0.1:{port}", timeout_s=5) == f"tcp://127.0.0.1:{port}"
    finally:
        pub.close(linger=0)
        context.term()
    with pytest.raises(ZmqUnavailableError, match="No 0MQ proxy answered"):
        check_zmq_address(f"127.0.0.1:{port}", timeout_s=0.5)  # closed now


def test_a_worker_without_a_tiled_server_says_which_one_to_give(capsys, monkeypatch):
    monkeypatch.delenv("SSB_TILED_URI", raising=False)
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    try:
        assert main(["analyze", "--zmq", f"127.0.0.1:{port}"]) == 2
    finally:
        pub.close(linger=0)
        context.term()
    out = said(capsys)
    assert "--tiled" in out and "SSB_TILED_URI" in out


def test_a_second_worker_on_the_same_state_is_refused(tmp_path):
    first = WorkerState(tmp_path)
    try:
        with pytest.raises(WorkerBusyError, match=r"Another analysis worker .* --state-dir"):
            WorkerState(tmp_path)
    finally:
        first.close()
    WorkerState(tmp_path).close()  # free again once the first one stopped
