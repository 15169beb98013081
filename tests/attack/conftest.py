"""Attacks on a real ``rlp2p serve`` process.

The tests run with ``--import-mode=importlib``, which puts no test folder on sys.path, so this
adds this folder for ``attack_util``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
