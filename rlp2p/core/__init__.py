"""The sans-I/O core of rlp2p: pure functions and classes over bytes, no network.

Only keys.py touches the disk, to read and write log key files.
"""
