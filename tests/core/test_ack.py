"""Signed upload-once acknowledgements (rlp2p.core.ack): pure, no network."""

from __future__ import annotations

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.rsa import create_new_key_pair as create_rsa_key_pair
from libp2p.crypto.secp256k1 import create_new_key_pair as create_secp_key_pair
from libp2p.peer.id import ID

from rlp2p.core.ack import ACK_DOMAIN, MAX_ACK_SIGNATURE, AckCheck, ack_message, check_ack, sign_ack
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.errors import LimitExceeded

NAME = log_name(generate_log_key().public_key)


def peer_of(pair) -> bytes:
    return ID.from_pubkey(pair.public_key).to_bytes()


def test_an_ack_verifies_against_the_peer_id_that_signed_it():
    target = create_new_key_pair()
    signature = sign_ack(target.private_key, NAME, 7)
    assert check_ack(peer_of(target), NAME, 7, signature) is AckCheck.VALID


def test_another_peer_sequence_or_log_does_not_verify():
    target, forwarder = create_new_key_pair(), create_new_key_pair()
    signature = sign_ack(target.private_key, NAME, 7)
    # a forwarder signing in the target's place
    assert check_ack(peer_of(target), NAME, 7, sign_ack(forwarder.private_key, NAME, 7)) is AckCheck.INVALID
    # the target's own ack, claimed for another peer
    assert check_ack(peer_of(forwarder), NAME, 7, signature) is AckCheck.INVALID
    # replayed: an ack of an earlier publish does not confirm a later sequence
    assert check_ack(peer_of(target), NAME, 8, signature) is AckCheck.INVALID
    other = log_name(generate_log_key().public_key)
    assert check_ack(peer_of(target), other, 7, signature) is AckCheck.INVALID


def test_bad_input_is_invalid_never_an_exception():
    target = create_new_key_pair()
    peer = peer_of(target)
    good = sign_ack(target.private_key, NAME, 1)
    for signature in (b"", b"x", good[:-1], good[:-1] + bytes([good[-1] ^ 1]), b"\0" * (MAX_ACK_SIGNATURE + 1)):
        assert check_ack(peer, NAME, 1, signature) is AckCheck.INVALID
    assert check_ack(peer, "\udcff", 1, good) is AckCheck.INVALID  # a name that does not encode


def test_the_signed_bytes_are_domain_separated():
    message = ack_message(NAME, 5)
    assert message.startswith(ACK_DOMAIN)
    assert message[len(ACK_DOMAIN) : len(ACK_DOMAIN) + 8] == (5).to_bytes(8, "big")
    # a plain signature of the same key over the statement without the prefix is no ack
    target = create_new_key_pair()
    bare = target.private_key.sign(message[len(ACK_DOMAIN) :])
    assert check_ack(peer_of(target), NAME, 5, bare) is AckCheck.INVALID
    with pytest.raises(LimitExceeded):
        ack_message("n" * 300, 1)
    with pytest.raises(ValueError):
        ack_message(NAME, -1)


def test_a_peer_id_without_its_key_cannot_be_checked_here():
    rsa = create_rsa_key_pair()
    assert check_ack(peer_of(rsa), NAME, 1, sign_ack(rsa.private_key, NAME, 1)) is AckCheck.NO_KEY
    # a secp256k1 peer id carries its key: checked like Ed25519
    secp = create_secp_key_pair()
    assert check_ack(peer_of(secp), NAME, 1, sign_ack(secp.private_key, NAME, 1)) is AckCheck.VALID
