import sys

from evallib.cli import main

sys.exit(main())
