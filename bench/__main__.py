"""``python -m bench``: the benchmark suite, run from a source checkout (bench/ is not installed)."""

import sys

from bench.runner import main

sys.exit(main())
