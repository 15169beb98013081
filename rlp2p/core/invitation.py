"""Signed invitations: a storage peer's written permission for one writer or one log (pure).

A storage peer in admission mode ``invite`` stores writes only for writers holding a valid,
unexpired invitation that it signed itself. The operator issues one (``rlp2p invite``), the
publisher presents it once per connection on ``/rlp2p/invite/1.0.0`` before her writes (the
specification's CAS and NS messages stay unchanged; open peers never see the exchange).

* ``subject``: a writer's peer id (her node key) or a log name; both are peer ids, and an
  invitation matches the writer who presents it or, for records, the log it names. An
  invitation for a log is a bearer token for that log: whoever presents it writes blocks within
  its quota and records for that log only.
* ``quota_bytes``: the most bytes of blocks the writer may have stored there (0: the peer's own
  per-peer quota); ``expires``: Unix seconds after which it admits nobody (0: never).
* Text form: ``rlp2p-invite:`` + base64url (no padding) of a ``vac.invite.SignedInvitation``; the
  signature is the issuer's libp2p key over ``SIGNING_PREFIX`` + the serialized invitation.

Every size is checked before anything is decoded; bad input raises
:class:`~rlp2p.errors.InvitationError` (a :class:`~rlp2p.errors.DecodeError`).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from google.protobuf.message import DecodeError as _PbDecodeError
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.peer.id import ID

from rlp2p.core.admission import parse_allow
from rlp2p.errors import DecodeError, InvitationError
from rlp2p.pb.vac import invite_pb2

__all__ = [
    "MAX_INVITATION",
    "MAX_TOKEN_TEXT",
    "TOKEN_PREFIX",
    "Invitation",
    "decode_token",
    "issue",
    "verify",
]

TOKEN_PREFIX = "rlp2p-invite:"
SIGNING_PREFIX = b"rlp2p-invitation:"
#: bytes of a signed invitation at most (an RSA-2048 issuer key is about 300 of them)
MAX_INVITATION = 2048
#: characters of a token's text form at most
MAX_TOKEN_TEXT = len(TOKEN_PREFIX) + (MAX_INVITATION * 4 + 2) // 3
#: characters of a subject (a base58 peer id is at most ~60)
MAX_SUBJECT = 128
NONCE_SIZE = 8
_MAX_U64 = 2**64 - 1


@dataclass(frozen=True)
class Invitation:
    """A verified invitation (or one about to be signed)."""

    issuer: str  #: base58 peer id of the storage peer that signed it
    subject: str  #: writer peer id or log name
    quota_bytes: int | None = None
    expires: int | None = None  #: Unix seconds
    #: the signed bytes (``vac.invite.SignedInvitation``), what a publisher presents
    signed: bytes = b""

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    def admits_writer(self, writer: str | None) -> bool:
        """Whether it names ``writer`` itself (then it covers every log the writer writes)."""
        return writer is not None and self.subject == writer

    def admits_record(self, writer: str | None, name: str) -> bool:
        """Whether a record for log ``name`` from ``writer`` is covered."""
        return self.admits_writer(writer) or self.subject == name

    def token(self) -> str:
        """The copy-pasteable text form."""
        return TOKEN_PREFIX + base64.urlsafe_b64encode(self.signed).rstrip(b"=").decode("ascii")


def issue(
    key_pair: KeyPair,
    subject: str,
    *,
    quota_bytes: int | None = None,
    expires: int | None = None,
    nonce: bytes | None = None,
) -> Invitation:
    """Sign an invitation with the storage peer's own key (``DATA/node.key``)."""
    (subject,) = parse_allow([subject])  # a peer id in its canonical spelling, or DecodeError
    for what, value in (("quota_bytes", quota_bytes), ("expires", expires)):
        if value is not None and not 1 <= value <= _MAX_U64:
            raise ValueError(f"{what} must be between 1 and 2**64-1, got {value}")
    body = invite_pb2.Invitation(
        issuer=key_pair.public_key.serialize(),
        subject=subject,
        quota_bytes=quota_bytes or 0,
        expires=expires or 0,
        nonce=os.urandom(NONCE_SIZE) if nonce is None else nonce,
    ).SerializeToString(deterministic=True)
    signed = invite_pb2.SignedInvitation(
        invitation=body, signature=key_pair.private_key.sign(SIGNING_PREFIX + body)
    ).SerializeToString(deterministic=True)
    if len(signed) > MAX_INVITATION:
        raise InvitationError(f"the invitation would be {len(signed)} bytes, over {MAX_INVITATION}")
    issuer = ID.from_pubkey(key_pair.public_key).to_base58()
    return Invitation(issuer, subject, quota_bytes, expires, signed)


def decode_token(text: str) -> bytes:
    """The signed bytes of a token's text form (not verified: see :func:`verify`)."""
    text = text.strip()
    if len(text) > MAX_TOKEN_TEXT:
        raise InvitationError(f"an invitation token is at most {MAX_TOKEN_TEXT} characters, got {len(text)}")
    if not text.startswith(TOKEN_PREFIX):
        raise InvitationError(f"an invitation token starts with {TOKEN_PREFIX!r}")
    body = text[len(TOKEN_PREFIX) :]
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvitationError(f"an invitation token is base64url after {TOKEN_PREFIX!r}: {exc}") from None


def verify(signed: bytes, issuer: str | None = None, *, now: float | None = None) -> Invitation:
    """Check a presented invitation: its size, its form, its signature, that ``issuer`` (a base58
    peer id: the storage peer checking it) signed it, and, with ``now`` (Unix seconds), that it
    has not expired. Raises InvitationError (``expired`` set for an expired one)."""
    if len(signed) > MAX_INVITATION:
        raise InvitationError(f"an invitation is at most {MAX_INVITATION} bytes, got {len(signed)}")
    outer, inner = invite_pb2.SignedInvitation(), invite_pb2.Invitation()
    try:
        outer.ParseFromString(signed)
        inner.ParseFromString(outer.invitation)
    except _PbDecodeError as exc:
        raise InvitationError(f"not an invitation: {exc}") from None
    if len(inner.subject) > MAX_SUBJECT:
        raise InvitationError(f"an invitation's subject is at most {MAX_SUBJECT} characters")
    try:
        (subject,) = parse_allow([inner.subject])
    except DecodeError as exc:
        raise InvitationError(f"an invitation's subject: {exc}") from None
    try:
        key = deserialize_public_key(inner.issuer)
        good = key.verify(SIGNING_PREFIX + outer.invitation, outer.signature)
    except Exception as exc:  # the key types raise several unrelated errors on bad bytes
        raise InvitationError(f"an invitation's issuer key or signature is malformed: {type(exc).__name__}") from None
    if not good:
        raise InvitationError("the invitation's signature does not verify")
    signer = ID.from_pubkey(key).to_base58()
    if issuer is not None and signer != issuer:
        raise InvitationError(f"the invitation was issued by {signer}, not by this storage peer {issuer}")
    invitation = Invitation(signer, subject, inner.quota_bytes or None, inner.expires or None, bytes(signed))
    if now is not None and invitation.expired(now):
        raise InvitationError(f"the invitation expired at Unix time {inner.expires}", expired=True)
    return invitation
