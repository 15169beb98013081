"""Signed invitations, pure: encode/decode with limits, verify with an injected clock, and the
``invite`` admission mode."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings, strategies as st

from rlp2p.core.admission import Admission, AdmissionConfig, PeerUsage
from rlp2p.core.invitation import MAX_INVITATION, TOKEN_PREFIX, decode_token, issue, verify
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.errors import InvitationError, NotAllowed, QuotaExceeded
from rlp2p.pb.vac import invite_pb2

STORAGE = generate_log_key()
STORAGE_ID = log_name(STORAGE.public_key)
WRITER = log_name(generate_log_key().public_key)
LOG = log_name(generate_log_key().public_key)
NOW = 1_800_000_000.0


def test_a_token_round_trips_and_verifies():
    inv = issue(STORAGE, WRITER, quota_bytes=1000, expires=int(NOW) + 60)
    token = inv.token()
    assert token.startswith(TOKEN_PREFIX) and "=" not in token and len(token) < 400
    got = verify(decode_token(token), STORAGE_ID, now=NOW)
    assert (got.issuer, got.subject, got.quota_bytes, got.expires) == (STORAGE_ID, WRITER, 1000, int(NOW) + 60)
    assert got.signed == inv.signed
    # no quota, no expiry
    plain = verify(issue(STORAGE, LOG).signed, STORAGE_ID, now=NOW)
    assert (plain.quota_bytes, plain.expires) == (None, None)


def test_expiry_is_judged_at_the_given_now():
    inv = issue(STORAGE, WRITER, expires=int(NOW) + 60)
    verify(inv.signed, STORAGE_ID, now=NOW + 59)
    with pytest.raises(InvitationError, match="expired") as err:
        verify(inv.signed, STORAGE_ID, now=NOW + 60)
    assert err.value.expired


def test_another_peers_or_a_forged_invitation_is_refused():
    other = generate_log_key()
    with pytest.raises(InvitationError, match="not by this storage peer"):
        verify(issue(other, WRITER).signed, STORAGE_ID, now=NOW)
    signed = invite_pb2.SignedInvitation.FromString(issue(STORAGE, WRITER, quota_bytes=10).signed)
    body = invite_pb2.Invitation.FromString(signed.invitation)
    body.quota_bytes = 10**12  # a bigger quota, the same signature
    forged = invite_pb2.SignedInvitation(invitation=body.SerializeToString(), signature=signed.signature)
    with pytest.raises(InvitationError, match="does not verify"):
        verify(forged.SerializeToString(), STORAGE_ID, now=NOW)
    # signed by another key but claiming the storage peer's key as issuer
    body.quota_bytes = 10
    body.issuer = STORAGE.public_key.serialize()
    data = body.SerializeToString()
    stolen = invite_pb2.SignedInvitation(invitation=data, signature=other.private_key.sign(b"rlp2p-invitation:" + data))
    with pytest.raises(InvitationError, match="does not verify"):
        verify(stolen.SerializeToString(), STORAGE_ID, now=NOW)


@pytest.mark.parametrize(
    "signed",
    [
        b"\xff" * 10,
        b"x" * (MAX_INVITATION + 1),
        invite_pb2.SignedInvitation(invitation=b"\x0a\x02ab", signature=b"s").SerializeToString(),
        invite_pb2.SignedInvitation(
            invitation=invite_pb2.Invitation(issuer=b"junk", subject=WRITER).SerializeToString(), signature=b"s"
        ).SerializeToString(),
    ],
    # fixed ids: the last value holds a random key, and pytest-xdist's workers must collect the same ids
    ids=["not-protobuf", "too-large", "bad-invitation", "junk-issuer"],
)
def test_malformed_invitations_get_a_typed_error(signed):
    with pytest.raises(InvitationError):
        verify(signed, STORAGE_ID, now=NOW)


def test_token_text_is_checked_before_decoding():
    for text in ("", "hello", TOKEN_PREFIX + "!!!", TOKEN_PREFIX + "A" * 5000):
        with pytest.raises(InvitationError):
            decode_token(text)
    with pytest.raises(ValueError):
        issue(STORAGE, "not a peer id")
    long = TOKEN_PREFIX + base64.urlsafe_b64encode(b"x" * 100).decode()
    assert decode_token(" " + long + "\n") == b"x" * 100


def admission() -> tuple[Admission, list[float]]:
    clock = [NOW]
    return Admission(AdmissionConfig(mode="invite", write_rate=None), now=lambda: clock[0]), clock


def test_invite_mode_admits_only_invited_writers_within_their_quota():
    adm, clock = admission()
    with pytest.raises(NotAllowed):
        adm.check_blocks(WRITER, PeerUsage(), 10)
    with pytest.raises(NotAllowed):
        adm.check_allowed(WRITER, LOG)
    adm.present(WRITER, verify(issue(STORAGE, WRITER, quota_bytes=100, expires=int(NOW) + 60).signed, STORAGE_ID, now=NOW))
    adm.check_blocks(WRITER, PeerUsage(bytes=50), 50)
    adm.check_allowed(WRITER, LOG)  # a writer's invitation covers every log it writes
    with pytest.raises(QuotaExceeded):
        adm.check_blocks(WRITER, PeerUsage(bytes=50), 51)
    with pytest.raises(NotAllowed):
        adm.check_blocks(LOG, PeerUsage(), 1)  # another writer
    clock[0] = NOW + 60  # expired: admits nobody
    with pytest.raises(NotAllowed):
        adm.check_blocks(WRITER, PeerUsage(), 1)
    assert adm.invitations(WRITER) == []


def test_a_log_invitation_admits_records_of_that_log_only():
    adm, _ = admission()
    adm.present(WRITER, verify(issue(STORAGE, LOG).signed, STORAGE_ID, now=NOW))
    adm.check_allowed(WRITER, LOG)
    adm.check_blocks(WRITER, PeerUsage(), 10)  # the per-peer quota applies (none set here: 1 GiB)
    with pytest.raises(NotAllowed):
        adm.check_allowed(WRITER, WRITER)
    # a second log's invitation from the same writer: both logs are admitted
    other_log = log_name(generate_log_key().public_key)
    adm.present(WRITER, verify(issue(STORAGE, other_log, quota_bytes=50).signed, STORAGE_ID, now=NOW))
    adm.check_allowed(WRITER, LOG)
    adm.check_allowed(WRITER, other_log)
    # allow-listed writers need no invitation
    listed = Admission(AdmissionConfig(mode="invite", allow=frozenset({WRITER})), now=lambda: NOW)
    listed.check_blocks(WRITER, PeerUsage(), 10)
    listed.check_allowed(WRITER, LOG)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=3000), st.text(max_size=200))
def test_any_bytes_or_text_give_an_invitation_or_a_typed_error(data, text):
    for attempt in (lambda: verify(data, STORAGE_ID, now=NOW), lambda: decode_token(TOKEN_PREFIX + text), lambda: decode_token(text)):
        try:
            attempt()
        except InvitationError:
            pass
