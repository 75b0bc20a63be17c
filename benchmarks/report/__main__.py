"""``python -m benchmarks.report [--check] [--no-plots]``: see :mod:`benchmarks.report`."""

import sys

from .cli import main

sys.exit(main())
