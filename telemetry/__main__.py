"""``python -m telemetry`` = the ``telemetry`` command."""

import sys

from telemetry.cli.main import main

sys.exit(main())
