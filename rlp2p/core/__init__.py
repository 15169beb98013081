"""The sans-I/O core of rlp2p: pure functions and classes over bytes, no network, no disk."""
