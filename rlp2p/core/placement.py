"""Where a log lives: its provider key, and its replica set by XOR distance (Kademlia's metric).

A log's replica set is the k CAS-capable peers closest to the log's key, ``sha256(name)``, the
same distance the DHT uses, so every publisher computes the same set from the same candidates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import cid
import multihash

#: prefix of the bytes hashed into a log's provider key, so it never collides with a content CID
PROVIDER_KEY_PREFIX = b"/rlp2p/log/"


def log_key(name: str) -> bytes:
    """The 32-byte Kademlia key of a log."""
    return hashlib.sha256(name.encode("utf-8")).digest()


def provider_key(name: str) -> str:
    """The CID (text) under which storage peers announce that they hold a log: one per log.

    A CIDv1 (raw, sha2-256) of ``/rlp2p/log/<name>``: a real CID, so go and js DHT servers
    accept it, and short enough for py-libp2p's FIND_NODE key check.
    """
    mh = multihash.encode(hashlib.sha256(PROVIDER_KEY_PREFIX + name.encode("utf-8")).digest(), "sha2-256")
    return cid.CIDv1("raw", mh).encode("base32").decode("ascii")


def xor_distance(a: bytes, b: bytes) -> int:
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def closest(target: bytes, peers: Iterable[bytes], k: int) -> list[bytes]:
    """The ``k`` peers (by their binary peer id) closest to ``target``, nearest first.

    Peer ids are hashed with sha256 first, as Kademlia does, so distance is uniform.
    """
    unique = list(dict.fromkeys(peers))
    unique.sort(key=lambda p: xor_distance(hashlib.sha256(p).digest(), target))
    return unique[:k]


def order_candidates(target: bytes, peers: Sequence[bytes]) -> list[bytes]:
    """Every candidate, nearest first: the first k are the replica set, the rest fall-overs."""
    return closest(target, peers, len(peers))
