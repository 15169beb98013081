"""Signed acknowledgements of upload once: a target's own word that it holds a record.

A forwarder can claim a target stored what it did not (it can forge no block and no record).
Instead of asking each target herself (one more round trip, an NS Fetch each), Alice takes the
target's acknowledgement, which the forwarder relays: the target signs, with its libp2p peer key,
"I hold record ``sequence`` of log ``name``". An Ed25519 peer id embeds its public key, so Alice
checks the signature against the peer id she named; the forwarder holds no target's key and
cannot forge one. A target holding a record at a sequence is what the NS Fetch confirmation
showed: it verified the record and, for a log new to it, that every block is there.

The signed bytes start with :data:`ACK_DOMAIN`, so an ack can never be taken for another
signature of that key (libp2p signs its own envelopes and records under other prefixes). An ack
of an older publish does not confirm a newer one: the sequence is signed, and Alice never signs
two records with one sequence. A peer id without an embedded key (RSA, ...) cannot be checked
here: :attr:`AckCheck.NO_KEY`, and Alice confirms with a Fetch as before.
"""

from __future__ import annotations

from enum import Enum

from libp2p.crypto.keys import PrivateKey
from libp2p.peer.id import ID

from rlp2p.errors import LimitExceeded

__all__ = ["ACK_DOMAIN", "MAX_ACK_SIGNATURE", "AckCheck", "ack_message", "check_ack", "sign_ack"]

#: the prefix of every signed acknowledgement (domain separation)
ACK_DOMAIN = b"/rlp2p/forward-ack/1\n"
#: the largest signature read from the wire (Ed25519's is 64 bytes)
MAX_ACK_SIGNATURE = 128
#: the largest name signed (a log name is a base58 peer id, ~52 characters)
MAX_ACK_NAME = 256


class AckCheck(Enum):
    VALID = "valid"  # the peer signed this statement
    INVALID = "invalid"  # forged, another peer's, another sequence or log: the relayer lied
    NO_KEY = "no-key"  # the peer id does not carry its key: confirm another way


def ack_message(name: str, sequence: int) -> bytes:
    """The bytes a target signs: the domain, the sequence (8 bytes, big-endian), the name."""
    raw = name.encode("utf-8")
    if len(raw) > MAX_ACK_NAME:
        raise LimitExceeded("acknowledged name", len(raw), MAX_ACK_NAME)
    if not 0 <= sequence < 1 << 64:
        raise ValueError(f"sequence out of range: {sequence}")
    return ACK_DOMAIN + sequence.to_bytes(8, "big") + raw


def sign_ack(key: PrivateKey, name: str, sequence: int) -> bytes:
    """The signature of the holder of ``key``: it holds record ``sequence`` of log ``name``."""
    return key.sign(ack_message(name, sequence))


def check_ack(peer: bytes, name: str, sequence: int, signature: bytes) -> AckCheck:
    """Whether ``signature`` is ``peer``'s (binary peer id) acknowledgement of ``sequence`` of
    ``name``. Never raises for bad input: anything that does not verify is INVALID."""
    try:
        key = ID(peer).extract_public_key()
    except Exception:  # not a peer id at all: nothing can be checked, nothing is trusted
        return AckCheck.INVALID
    if key is None:
        return AckCheck.NO_KEY
    if not signature or len(signature) > MAX_ACK_SIGNATURE:
        return AckCheck.INVALID
    try:
        return AckCheck.VALID if key.verify(ack_message(name, sequence), signature) else AckCheck.INVALID
    except Exception:  # a malformed signature or message
        return AckCheck.INVALID
