"""``/rlp2p/invite/1.0.0``: a publisher presents a storage peer's signed invitation before her
writes (rlp2p's own protocol; the specification's CAS and NS messages are unchanged by it).

One request frame, the ``vac.invite.SignedInvitation`` itself; one answer, an
``InviteResponse``. The server verifies it (signed by this peer, unexpired, by the node's clock)
and its admission remembers it for the presenting writer, the stream's remote peer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from libp2p.custom_types import TProtocol

from rlp2p.core.admission import Admission
from rlp2p.core.invitation import MAX_INVITATION, verify
from rlp2p.errors import InvitationError, ProtocolError, Rlp2pError
from rlp2p.limits import DEFAULT_LIMITS, Limits
from rlp2p.pb.vac import invite_pb2
from rlp2p.wire.admit import peer_of
from rlp2p.wire.rpc import Reply, RpcStream, one_at_a_time, parse_frame, serve_stream

INVITE_PROTOCOL = TProtocol("/rlp2p/invite/1.0.0")
Status = invite_pb2.InviteResponse.Status
#: an answer's size at most (a status and a one-line message)
MAX_ANSWER = 4096


def _answer(status: Any, message: str = "") -> bytes:
    return invite_pb2.InviteResponse(status=status, message=message[:1000]).SerializeToString()


def _error_frame(exc: Rlp2pError) -> bytes:
    return _answer(Status.INVALID, str(exc))


class InviteServer:
    def __init__(
        self,
        admission: Admission,
        issuer: str,
        now: Callable[[], float],
        limits: Limits = DEFAULT_LIMITS,
        *,
        idle_timeout: float = 30.0,
    ) -> None:
        self.admission = admission
        self.issuer = issuer  # this peer's base58 id: only its own invitations admit
        self.now = now
        self.limits = limits
        self.idle_timeout = idle_timeout

    def handle(self, frame: bytes, writer: str | None) -> bytes:
        if writer is None:
            return _answer(Status.INVALID, "an invitation is presented over a libp2p connection")
        try:
            invitation = verify(frame, self.issuer, now=self.now())
        except InvitationError as exc:
            return _answer(Status.EXPIRED if exc.expired else Status.INVALID, str(exc))
        self.admission.present(writer, invitation)
        return _answer(Status.OK)

    async def handle_stream(self, stream: Any) -> None:
        writer = peer_of(stream)

        async def handle(frame: bytes) -> Reply:
            return Reply(self.handle(frame, writer))

        await serve_stream(
            stream,
            one_at_a_time(handle),
            _error_frame,
            self.limits,
            idle_timeout=self.idle_timeout,
            name="invite",
            max_frame=MAX_INVITATION,
        )


async def present(rpc: RpcStream, signed: bytes) -> None:
    """Present ``signed`` on an invite stream; InvitationError if the peer does not take it."""
    frame = await rpc.call(signed)
    if len(frame) > MAX_ANSWER:
        raise ProtocolError(f"an invite answer of {len(frame)} bytes, over {MAX_ANSWER}")
    answer = parse_frame(invite_pb2.InviteResponse, frame, ProtocolError)
    if answer.status != Status.OK:
        raise InvitationError(
            f"the storage peer refused the invitation: {answer.message or answer.status}",
            expired=answer.status == Status.EXPIRED,
        )


__all__ = ["INVITE_PROTOCOL", "InviteServer", "present"]
