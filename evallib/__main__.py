"""``python -m evallib``: the ``evallib`` command."""

import sys

from evallib.pipeline.cli import main

sys.exit(main())
