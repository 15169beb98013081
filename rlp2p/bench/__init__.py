"""Benchmarks and simulations: pure models, no network, for the docs and the bench runner."""
