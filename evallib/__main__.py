import sys

from evallib.pipeline.cli import main

sys.exit(main())
