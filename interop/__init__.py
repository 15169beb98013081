"""The js-libp2p peer (``node.mjs``) and its Python driver :mod:`interop.jsnode`, shared by the
interop tests and the DHT benchmark; importable from a source checkout, not installed."""
