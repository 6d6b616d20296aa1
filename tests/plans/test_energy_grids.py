import numpy as np
import pytest

from ssb_beamline.plans import NI_K_EDGE_PRESETS, edge_grid, ni_k_edge_grid, validate_energies


@pytest.mark.parametrize(
    ("preset", "n"), [("quick", 21), ("standard", 41), ("fine", 63), ("full", 101)]
)
def test_presets_have_their_sizes_and_cover_the_edge(preset, n):
    grid = ni_k_edge_grid(preset)
    assert grid.size == n
    assert grid[0] == 8300.0 and grid[-1] == 8450.0
    assert np.all(np.diff(grid) > 0)
    steps = np.diff(grid)
    edge_steps = steps[(grid[:-1] >= 8328) & (grid[1:] <= 8360)]
    assert edge_steps.max() < steps[grid[1:] < 8328].min()  # fine through the edge


def test_every_preset_is_listed():
    assert set(NI_K_EDGE_PRESETS) == {"quick", "standard", "fine", "full"}


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="choose one of"):
        ni_k_edge_grid("huge")


def test_edge_grid_rejects_regions_out_of_order():
    with pytest.raises(ValueError, match="start < edge_start"):
        edge_grid(8400, 8330, 8350, 8450, n_pre=3, n_edge=5, n_post=3)


@pytest.mark.parametrize(
    ("energies", "message"),
    [
        ([], "empty"),
        ([8300.0, 8310.0, 8310.0, 8320.0], "listed twice"),
        ([8300.0, 8320.0, 8310.0], "strictly increasing"),
        ([8300.0, float("nan")], "finite"),
    ],
)
def test_validate_energies_explains_the_problem(energies, message):
    with pytest.raises(ValueError, match=message):
        validate_energies(energies)
