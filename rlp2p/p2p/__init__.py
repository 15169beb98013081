"""The only importer of py-libp2p networking: hosts, the DHT, streams, and the workarounds of
py-libp2p 0.8.1's sharp edges. Failures leave this package as ``rlp2p.errors`` types
(:class:`~rlp2p.errors.Timeout`, :class:`~rlp2p.errors.DialFailure`), never as ``trio.TooSlowError``
or py-libp2p's own exceptions."""
