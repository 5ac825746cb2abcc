"""``python -m jaxnn.cli``: the same as the ``jaxnn-train`` command."""

import sys

from jaxnn.cli import command_line

sys.exit(command_line())
