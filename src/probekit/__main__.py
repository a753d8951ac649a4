"""``python -m probekit``: the ``probekit`` command (see :mod:`probekit.cli`)."""

import sys

from .cli import main

sys.exit(main())
