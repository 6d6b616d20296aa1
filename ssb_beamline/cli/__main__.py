"""``python -m ssb_beamline.cli``: the ``ssb-beamline`` command."""

import sys

from ssb_beamline.cli import main

sys.exit(main())
