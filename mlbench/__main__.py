"""``python -m mlbench``."""

import sys

from mlbench.cli import main

sys.exit(main())
