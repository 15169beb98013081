"""The ``rlp2p`` command."""
