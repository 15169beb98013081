"""Fuzz harnesses of every decoder that reads a peer's bytes (see _common.py)."""
