"""Focus models by name: registry, and a named model drives xanes_scan like the callable."""

import pytest

from ssb_beamline.plans import xanes_scan
from ssb_beamline.plans.focus_models import (
    UnknownFocusModelError,
    focus_model_names,
    get_focus_model,
    register_focus_model,
    resolve_focus,
    unregister_focus_model,
)


@pytest.fixture
def registered():
    register_focus_model("test_flat", lambda e: (50.0, 2500.0))
    yield "test_flat"
    unregister_focus_model("test_flat")


def test_a_registered_name_resolves_to_its_model(registered):
    assert registered in focus_model_names()
    assert get_focus_model(registered)(8333.0) == (50.0, 2500.0)
    assert resolve_focus(registered) is get_focus_model(registered)


def test_a_callable_and_none_pass_through():
    def model(e):
        return (1.0, 2.0)

    assert resolve_focus(model) is model
    assert resolve_focus(None) is None


def test_unknown_name_lists_the_known_ones(registered):
    with pytest.raises(UnknownFocusModelError) as info:
        get_focus_model("no_such_model")
    message = str(info.value)
    assert "'no_such_model'" in message
    assert "'test_flat'" in message
    assert "register_focus_model" in message


@pytest.mark.parametrize(
    ("name", "model", "error"),
    [("", lambda e: (0, 0), "non-empty string"), ("x", 3.0, "must be callable")],
)
def test_registering_nonsense_is_refused(name, model, error):
    with pytest.raises(TypeError, match=error):
        register_focus_model(name, model)


def test_a_focus_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match="focus-model name"):
        resolve_focus(3.0)


def test_xanes_scan_by_name_moves_the_optics_as_the_callable_does(RE, docs, make_txm):
    txm = make_txm()

    def model(energy_ev):
        p = txm.focus_positions(energy_ev)
        return p.zp_z_mm, p.det_z_mm

    register_focus_model("test_txm", model)
    try:
        energies = [8300.0, 8350.0]
        RE(xanes_scan(txm.detector, txm.energy, txm.zp_z, txm.det_z, txm.sample.x, txm.shutter,
                      txm.i0, energies, sample_out=txm.sample_out_x_um, focus="test_txm",
                      n_dark=1))  # fmt: skip
    finally:
        unregister_focus_model("test_txm")
    (start,) = docs.of("start")
    assert start["focus_tracking"] is True
    assert start["plan_args"]["focus"] == "test_txm"
    zp_key = txm.zp_z.name
    images = docs.events("primary")
    assert [e["data"][zp_key] for e in images] == pytest.approx(
        [model(e)[0] for e in energies], abs=1e-3
    )


def test_xanes_scan_with_an_unknown_name_fails_when_built(make_txm):
    txm = make_txm()
    with pytest.raises(UnknownFocusModelError, match="Known focus models"):
        xanes_scan(txm.detector, txm.energy, txm.zp_z, txm.det_z, txm.sample.x, txm.shutter,
                   txm.i0, [8300.0, 8350.0], sample_out=txm.sample_out_x_um,
                   focus="no_such_model")  # fmt: skip
