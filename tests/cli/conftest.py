"""Fixtures of the command tests (the figure conventions: :mod:`figure_checks`)."""

from __future__ import annotations

import pytest
from figure_checks import check_figure


@pytest.fixture(name="check_figure")
def check_figure_fixture():
    """:func:`check_figure`, for the figure tests of this folder."""
    return check_figure
