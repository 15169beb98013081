"""The embeddable node: lifecycle and roles over rlp2p.p2p (networking), rlp2p.wire and a store."""
