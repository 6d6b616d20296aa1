"""Bad inputs that used to give a traceback, a silent wrong result or a wrong message
(issue 11, finding 8): each now gets an error naming the problem and the fix.

The command-line cases run ``ssb-beamline`` (``cli.main``) against real tiled servers;
the demo cases run real (small) demos.
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import numpy as np
import pytest

from ssb_beamline.analysis import absorbance, edge_energy_map, soc_map
from ssb_beamline.cli import main
from ssb_beamline.plans import validate_energies, xanes_scan
from ssb_beamline.profiles.demo_checks import DemoInputError, check_demo_inputs
from ssb_beamline.storage import EmbeddedTiledServer, open_store
from ssb_beamline.storage.access import add_readonly_key
from ssb_beamline.storage.replay import ReplayError, resolve_uid, select_runs
from ssb_beamline.storage.server_config import DATA_DIR_ENV, TILED_API_KEY_ENV, TILED_URI_ENV
from ssb_beamline.storage.synthetic import count_run, write_run

ENERGIES = np.linspace(8300.0, 8400.0, 41)
UNREACHABLE = "http://127.0.0.1:9/api/v1"  # the discard port: nothing answers there


def flat_text(text: str) -> str:
    """CLI output without the line breaks the console adds at 80 columns."""
    return " ".join(text.split())


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, flat_text(captured.out + captured.err)


def step_spectrum() -> np.ndarray:
    return (0.2 + 1.0 / (1.0 + np.exp(-(ENERGIES - 8343.0) / 2.0))).astype(np.float32)


# -- analysis arguments that gave all-NaN maps, 0.5 or zeros ----------------------------
@pytest.mark.parametrize("level", [2.0, 0.0, 1.0, math.nan, -0.5])
def test_edge_level_outside_zero_one(level):
    with pytest.raises(ValueError, match=r"level must be a number strictly between 0 and 1.*0\.5"):
        edge_energy_map(step_spectrum(), ENERGIES, level=level)


def test_soc_from_three_lcf_components():
    fractions = np.array([[0.25], [0.25], [0.5]])  # gave 0.5, ignoring the third
    with pytest.raises(ValueError, match=r"3 components.*exactly two end members.*NiO"):
        soc_map(fractions=fractions)


@pytest.mark.parametrize("saturation", [math.nan, 0.0, -1.0, "lots"])
def test_absorbance_with_a_saturation_that_is_not_a_count(saturation):
    flat = np.full((4, 4), 1000, np.uint16)
    dark = np.full((4, 4), 100, np.uint16)
    with pytest.raises(ValueError, match=r"saturation must be a positive number.*65535"):
        absorbance(np.full((4, 4), 500, np.uint16), dark, flat, saturation=saturation)


# -- scan energies ------------------------------------------------------------------------
def test_negative_energies_are_refused():
    with pytest.raises(ValueError, match=r"must be positive; entries \[0, 1\] \(-8350.0 eV"):
        validate_energies([-8350.0, -8340.0, 8330.0])


def test_a_two_dimensional_energy_list_is_not_flattened():
    with pytest.raises(ValueError, match=r"flat list.*2-D array of shape \(2, 3\)"):
        validate_energies([[8300.0, 8310.0, 8320.0], [8330.0, 8340.0, 8350.0]])


def test_the_xanes_plan_refuses_negative_energies_when_built():
    with pytest.raises(ValueError, match="must be positive"):
        xanes_scan(*[None] * 7, [-1.0, 2.0, 3.0], sample_out=0.0, focus=None)


# -- command-line arguments -------------------------------------------------------------
@pytest.mark.parametrize("limit", ["-1", "ten", "1.5"])
def test_runs_limit_that_is_not_a_count(limit, capsys):
    # `--limit 0` lists every run (issue 15); negative or non-integer counts are refused
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "--limit", limit, "--tiled", UNREACHABLE])
    assert exit_info.value.code == 2
    assert f"argument --limit: must be a whole number >= 0, got '{limit}'" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("command", ["show", "report"])
def test_figures_out_path_that_is_a_file_is_refused_before_connecting(command, tmp_path, capsys):
    out = tmp_path / "figures.png"
    out.write_text("not a folder")
    # nothing answers at UNREACHABLE: the check comes before any connection
    code, text = run_cli([command, "0123abcd", "--tiled", UNREACHABLE, "--out", str(out)], capsys)
    assert code == 2, text
    assert f"--out {out} cannot be a folder: {out} is a file" in text and "Traceback" not in text


def test_demo_out_path_that_is_a_file_is_refused_before_the_scan(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    out = tmp_path / "demo.png"
    out.write_text("not a folder")
    code, text = run_cli(["demo", "--out", str(out / "sub"), "--size", "64"], capsys)
    assert code == 2 and "cannot be a folder" in text and f"{out} is a file" in text
    assert not (tmp_path / "data").exists()  # no server started, no run taken


def test_demo_size_that_cannot_fit_in_memory_is_refused_up_front(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    code, text = run_cli(["demo", "--size", "60000", "--out", str(tmp_path / "o")], capsys)
    assert code == 2, text
    assert "A 60000 x 60000 px demo with the 'standard' preset needs about" in text
    assert "GiB is available. Use --size" in text and "MemoryError" not in text
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("variant", "args", "message"),
    [
        (["--epics"], ["--size", "100000"], "--size must be 16..4096 pixels for the EPICS demo"),
        (["--epics"], ["--size", "0"], "--size must be a whole number of pixels >= 16; got 0"),
        (["--epics"], ["--size", "2048"], "A 2048 x 2048 px EPICS demo with the 'standard'"),
        (["--epics"], ["--size", "64", "--out", "/proc/zz"], "--out /proc/zz: "),
        (["--stxm"], ["--size", "0"], "--size must be 8..512 raster pixels for the STXM demo"),
        (["--stxm"], ["--size", "600"], "--size must be 8..512 raster pixels for the STXM demo"),
        (["--stxm"], ["--out", "/proc/zz"], "--out /proc/zz: "),
        (["--network"], ["--out", "/proc/zz"], "--out /proc/zz: "),
        ([], ["--size", "64", "--out", "/proc/zz"], "--out /proc/zz: "),
    ],
)
def test_every_demo_variant_checks_its_inputs_before_anything_starts(
    variant, args, message, tmp_path, capsys, monkeypatch
):
    """``demo --epics`` gave a MemoryError, a message naming no option, or failed after the scan."""
    from ssb_beamline.devices.beamline_file import default_beamline_file
    from ssb_beamline.profiles import demo_checks

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(demo_checks, "available_memory_bytes", lambda: 2 * 2**30)
    beamline = tmp_path / "my-txm.yaml"
    beamline.write_text(default_beamline_file().read_text())
    if variant == ["--epics"]:
        variant = [*variant, "--beamline", str(beamline), "--ca-port", "5097"]
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "out")]
    code, text = run_cli(["demo", *variant, *args], capsys)
    assert code == 2, text
    assert message in text and "Traceback" not in text
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("size", [0, -5, 8])
def test_demo_size_too_small(size, tmp_path):
    with pytest.raises(DemoInputError, match=r"--size must be a whole number of pixels >= 16"):
        check_demo_inputs(out_dir=tmp_path, size=size, preset="quick")


# -- run uids and scan ids against a real server ----------------------------------------
@pytest.fixture(scope="module")
def store(tiled_server, tmp_path_factory):
    store = open_store(tiled_server.url, api_key=tiled_server.api_key,
                       data_dir=tmp_path_factory.mktemp("msg-client"))  # fmt: skip
    uid = f"msg-{uuid.uuid4()}"
    write_run(store.raw, count_run(uid))
    store.count_uid = uid
    return store


@pytest.mark.parametrize("uid", ["", "..", "../raw", "../results/abc", "a/b", "."])
def test_uids_that_are_paths_are_not_runs(store, uid):
    with pytest.raises(ReplayError, match=r"is not a run uid: uids are letters, digits and '-'"):
        resolve_uid(store.raw, uid)


def test_show_of_a_path_uid_writes_nothing_outside_out(store, tiled_server, tmp_path, monkeypatch,
                                                       capsys):  # fmt: skip
    monkeypatch.setenv(TILED_API_KEY_ENV, tiled_server.api_key)
    out = tmp_path / "o"
    args = ["show", f"../results/{store.count_uid}", "--tiled", tiled_server.url, "--out", str(out)]
    code, text = run_cli(args, capsys)
    assert code == 2 and "is not a run uid" in text
    assert list(tmp_path.iterdir()) == []


def test_scan_id_beyond_64_bits(store, tiled_server, monkeypatch, capsys):
    with pytest.raises(ReplayError, match=r"scan_id 99999999999999999999999 is out of range"):
        select_runs(store.raw, scan_id=99999999999999999999999)
    monkeypatch.setenv(TILED_API_KEY_ENV, tiled_server.api_key)
    args = ["replay", "--scan-id", "99999999999999999999999", "--tiled", tiled_server.url]
    code, text = run_cli(args, capsys)
    assert code == 2 and "is out of range: scan ids are whole numbers from 0 to" in text
    assert "Traceback" not in text and "500" not in text


# -- demos against a server named by URI ------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server whose data directory is $SSB_DATA_DIR, with a read-only key."""
    root = tmp_path_factory.mktemp("msg-served")
    readonly = uuid.uuid4().hex
    add_readonly_key(root, readonly)
    with EmbeddedTiledServer(root, in_process=True) as server:
        open_store(server.url, api_key=server.api_key, data_dir=root).close()  # raw, results
        server.readonly_key = readonly
        yield server


def demo_args(out: Path) -> list[str]:
    return ["demo", "--preset", "quick", "--size", "64", "--out", str(out)]


@pytest.mark.slow
def test_demo_with_a_read_only_key_says_journaled_and_still_draws(served, tmp_path, monkeypatch,
                                                                  capsys, recwarn):  # fmt: skip
    """Also: ``--tiled`` without ``--data-dir`` uses $SSB_DATA_DIR, not ./detector.

    And no warning of event-model's guessing at an old API (a 403 is no such thing).
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(served.layout.root))
    monkeypatch.setenv(TILED_API_KEY_ENV, served.readonly_key)
    monkeypatch.delenv(TILED_URI_ENV, raising=False)
    out = tmp_path / "figs"
    code, text = run_cli(["demo", "--tiled", served.url, *demo_args(out)[1:]], capsys)
    assert code == 1, text
    assert "The raw data are stored" not in text
    assert "are only journaled in" in text and "not (completely) in tiled" in text
    assert "The maps did not reach tiled; they are journaled in" in text
    assert "Run `ssb-beamline sync`" in text
    for name in ("maps.png", "truth_vs_result.png"):
        assert (out / name).stat().st_size > 10_000
    assert "directory_path" not in text and not (tmp_path / "detector").exists()
    assert list(served.layout.detector.glob("*.h5"))  # the server's readable folder
    assert not [w for w in recwarn if "RunRouter passed it" in str(w.message)]


@pytest.mark.slow
def test_demo_whose_server_died_says_journaled_and_still_draws(tmp_path, monkeypatch, capsys):
    """The server is killed (SIGKILL) as the scan starts: the demo says where the data are.

    Finding 8's "a demo whose server died said 'The raw data are stored'": the raw
    data and the maps are only journaled, the figures are drawn, `sync` is named.
    """
    import threading

    import stamina

    root = tmp_path / "data"
    server = EmbeddedTiledServer(root)  # a child process, killed below
    try:
        open_store(server.url, api_key=server.api_key, data_dir=root).close()  # raw, results
        started = threading.Event()

        def kill_when_frames_are_written() -> None:
            while not started.is_set():
                if any(server.layout.detector.rglob("*.h5")):
                    server.process.kill()  # the scan has started: its start document is sent
                    server.process.wait()
                    return
                started.wait(0.01)

        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv(TILED_API_KEY_ENV, server.api_key)
        monkeypatch.delenv(TILED_URI_ENV, raising=False)
        watcher = threading.Thread(target=kill_when_frames_are_written, daemon=True)
        watcher.start()
        out = tmp_path / "figs"
        args = ["demo", "--tiled", server.url, "--data-dir", str(root), *demo_args(out)[1:]]
        with stamina.set_testing(True, attempts=1):  # no retries of a dead server
            code, text = run_cli(args, capsys)
        started.set()
        watcher.join(timeout=10)
    finally:
        server.close()
    assert server.process.returncode is not None and server.process.returncode < 0  # killed
    assert code == 1, text
    assert "The raw data are stored" not in text and "Traceback" not in text
    assert "failed in stop" not in text  # the maps were computed: only storing them failed
    assert "are only journaled in" in text and "not (completely) in tiled" in text
    assert "The maps did not reach tiled; they are journaled in" in text
    assert "Run `ssb-beamline sync`" in text
    for name in ("maps.png", "truth_vs_result.png"):
        assert (out / name).stat().st_size > 10_000
