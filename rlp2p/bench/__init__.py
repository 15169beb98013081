"""Benchmarks and simulations: ``rlp2p bench`` (:mod:`rlp2p.bench.runner`) measures the node on a
local swarm beside its baselines; :mod:`rlp2p.bench.offline_sim` is the pure epoch model of MVDS
against the remote log."""
