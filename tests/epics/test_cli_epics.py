"""``ssb-beamline check`` and ``ssb-beamline ioc`` against real Channel Access servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from ssb_beamline.cli import main
from ssb_beamline.profiles.connection import check_beamline
from ssb_beamline.sim_devices.ioc import unique_prefix
from ssb_beamline.sim_devices.ioc.launch import ca_search
from ssb_beamline.storage import open_store


def test_check_lists_every_pv_of_a_missing_ioc_with_its_line():
    prefix = unique_prefix("NOIOC")
    loaded, missing, total = check_beamline(None, prefix=prefix, timeout=1.0)
    assert total == 10
    pvs = dict(missing)
    assert f"{prefix}Mono:Energy.RBV" in pvs and f"{prefix}cam1:Acquire" in pvs
    assert f"{prefix}Shtr:Ph:Sts" in pvs and f"{prefix}I0:Counts" in pvs
    line = loaded.lines["devices.energy.pv"]
    assert pvs[f"{prefix}Mono:Energy.RBV"].endswith(f"line {line} (devices.energy.pv)")
    assert main(["check", "--prefix", prefix, "--timeout", "1"]) == 1


def test_check_passes_against_the_simulated_ioc(sim_ioc, capsys):
    assert main(["check", "--prefix", sim_ioc.prefix, "--timeout", "5"]) == 0
    assert "All 10 devices" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return udp.getsockname()[1]


def test_ioc_command_serves_until_interrupted(tmp_path):
    prefix, port = unique_prefix("CLI"), _free_port()
    cmd = [sys.executable, "-m", "ssb_beamline.cli", "ioc", "--prefix", prefix,
           "--port", str(port)]  # fmt: skip
    with open(tmp_path / "ioc.log", "w") as log:
        # started with SIGINT blocked, as by a parent that blocks it (a pytest-xdist
        # worker of the full suite did): Ctrl-C must still stop the IOC
        process = subprocess.Popen(
            cmd, stdout=log, stderr=log, env=dict(os.environ),
            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}),  # noqa: PLW1509  (a signal mask only)
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ca_search(prefix + "Mono:Energy.RBV", port):
            assert process.poll() is None, (tmp_path / "ioc.log").read_text()
            assert time.monotonic() < deadline, "the IOC did not answer within 60 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, (tmp_path / "ioc.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.slow
def test_demo_over_ca_through_the_cli_starts_its_ioc(tmp_path):
    """``ssb-beamline demo --epics``: no IOC serves the prefix, so the demo starts one.

    Run as the user runs it: libca writes to the process's stderr itself, and its
    "Virtual circuit disconnect" block came after every run (the child IOC was
    stopped while the session's channels were still open).
    """
    prefix, data, out = unique_prefix("DEMO"), tmp_path / "data", tmp_path / "out"
    args = ["demo", "--epics", "--prefix", prefix, "--size", "64", "--preset", "quick",
            "--data-dir", str(data), "--out", str(out)]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "ssb_beamline.cli", *args], check=False,
                          env=dict(os.environ), capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    text = " ".join(done.stdout.split())
    assert done.returncode == 0, text + done.stderr
    assert f"XANES scan over Channel Access ({prefix})" in text
    assert "SOC RMSE against truth" in text and "Traceback" not in text + done.stderr
    assert "CA.Client.Exception" not in done.stderr and "Virtual circuit" not in done.stderr
    assert (out / "maps.png").stat().st_size > 10_000
    with open_store(data_dir=data) as store:
        (uid,) = list(store.raw)
        run = store.raw[uid]
        assert run.metadata["start"]["plan_name"] == "xanes_scan"
        assert run.metadata["stop"]["exit_status"] == "success"
        assert run.metadata["start"]["simulated"] is False  # the beamline profile, over CA
        assert len(run["primary"]["seq_num"].read()) == 21  # the quick grid
        assert list(store.results[uid])  # the live maps reached tiled
        assert list(data.rglob("*.h5"))  # the IOC wrote the frames where tiled reads them
