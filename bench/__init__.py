"""Benchmarks and simulations: ``python -m bench`` (:mod:`bench.runner`, from a checkout) measures the node on a
local swarm beside its baselines; :mod:`bench.offline_sim` is the pure epoch model of MVDS
against the remote log."""
