"""Print the path of a shipped queue-server file: ``existing`` or ``permissions``."""

import sys

from ssb_beamline.profiles.qserver import EXISTING_PLANS_AND_DEVICES, USER_GROUP_PERMISSIONS

FILES = {"existing": EXISTING_PLANS_AND_DEVICES, "permissions": USER_GROUP_PERMISSIONS}

if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which not in FILES:
        sys.exit(f"usage: python -m ssb_beamline.profiles.qserver {{{' | '.join(FILES)}}}")
    sys.stdout.write(f"{FILES[which]}\n")
