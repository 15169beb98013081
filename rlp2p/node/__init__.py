"""The embeddable node: lifecycle and roles over rlp2p.p2p (networking), rlp2p.wire and a store."""

import sys

from rlp2p.p2p import dht as _dht
from rlp2p.p2p import host as _host

# Old import paths (rlp2p.node.host, rlp2p.node.dht) still used by the benchmarks and scripts
# outside the package; remove once they import rlp2p.p2p.
sys.modules.setdefault(f"{__name__}.host", _host)
sys.modules.setdefault(f"{__name__}.dht", _dht)
