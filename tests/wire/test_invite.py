"""The invite protocol's server decisions, without a network: answers for a good, an expired, a
foreign and a malformed invitation, and what admission remembers."""

from __future__ import annotations

from rlp2p.core.admission import Admission, AdmissionConfig
from rlp2p.core.invitation import issue
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.pb.vac import invite_pb2
from rlp2p.wire.invite import InviteServer

KEY = generate_log_key()
ISSUER = log_name(KEY.public_key)
WRITER = log_name(generate_log_key().public_key)
NOW = 1_800_000_000.0
Status = invite_pb2.InviteResponse.Status


def answer(frame: bytes) -> invite_pb2.InviteResponse:
    return invite_pb2.InviteResponse.FromString(frame)


def test_the_server_answers_and_remembers_only_a_good_invitation():
    admission = Admission(AdmissionConfig(mode="invite"), now=lambda: NOW)
    server = InviteServer(admission, ISSUER, lambda: NOW)
    expired = issue(KEY, WRITER, expires=int(NOW) - 1).signed
    assert answer(server.handle(expired, WRITER)).status == Status.EXPIRED
    foreign = issue(generate_log_key(), WRITER).signed
    assert answer(server.handle(foreign, WRITER)).status == Status.INVALID
    assert answer(server.handle(b"\xff\x00junk", WRITER)).status == Status.INVALID
    good = issue(KEY, WRITER).signed
    assert answer(server.handle(good, None)).status == Status.INVALID  # no peer to remember it for
    assert admission.invitations(WRITER) == []
    assert answer(server.handle(good, WRITER)).status == Status.OK
    assert [inv.subject for inv in admission.invitations(WRITER)] == [WRITER]
