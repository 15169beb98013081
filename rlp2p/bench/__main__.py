"""``python -m rlp2p.bench``: the benchmark suite (the same as ``rlp2p bench``)."""

import sys

from rlp2p.bench.runner import main

sys.exit(main())
