"""One exception hierarchy for rlp2p.

Everything rlp2p raises on purpose derives from :class:`Rlp2pError`, so an application can catch
one type at its boundary. Subclasses say what went wrong, not where: the same
:class:`LimitExceeded` comes from a page decoder, a frame reader or a record check.
"""

from __future__ import annotations


class Rlp2pError(Exception):
    """Base of every error rlp2p raises on purpose."""


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (possibly nested) exception groups; ``[exc]`` for a plain one.

    trio's nurseries (ours and py-libp2p's) wrap errors in groups; callers unwrap them here to
    hand applications the typed error that was raised.
    """
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in leaves(sub)]
    return [exc]


# --- bytes in, structure out ---------------------------------------------------------------


class DecodeError(Rlp2pError, ValueError):
    """Bytes that do not parse as what they should be."""


class InvitationError(DecodeError):
    """An invitation that does not admit: malformed, badly signed, issued by another storage
    peer, or (``expired``) past its expiry."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class LimitExceeded(DecodeError):
    """A size or count read from input is over its limit; nothing was allocated for it."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what}: {size} is over the limit of {limit}")
        self.what = what
        self.size = size
        self.limit = limit


class AddressError(DecodeError):
    """Not a CAS address (CIDv1 over sha2-256) that rlp2p accepts."""


class PageError(DecodeError):
    """A RemoteLog page that is malformed or breaks the log's rules (order, seq, hashes)."""


class PageDeltaError(DecodeError):
    """A page delta (rlp2p.core.pagedelta) that is malformed or does not fit its base page."""


# --- integrity -----------------------------------------------------------------------------


class IntegrityError(Rlp2pError):
    """Bytes that parse but are not the bytes that were asked for."""


class HashMismatch(IntegrityError):
    """A block whose hash is not the address it was fetched under."""


class MessageIdMismatch(IntegrityError):
    """A page pair whose message does not hash to the pair's MVDS id (H1)."""


# --- signed records ------------------------------------------------------------------------


class RecordError(Rlp2pError):
    """A name-system record that cannot be accepted."""


class InvalidRecord(RecordError):
    """Malformed, forged or altered record: its signature or structure does not check out."""


class WrongName(InvalidRecord):
    """A valid record, but signed by a key other than the name's."""


class ExpiredRecord(InvalidRecord):
    """A record whose validity (EOL) has passed."""


class RecordTooLarge(InvalidRecord, LimitExceeded):
    """A record over the IPNS limit of 10 KiB."""


class StaleRecord(RecordError):
    """A valid record whose sequence does not beat the one already held (a replay or a race)."""

    def __init__(self, message: str, *, have: int, got: int) -> None:
        super().__init__(message)
        self.have = have
        self.got = got


class UnbackedSequence(RecordError):
    """A storage peer said, in a poll, that it holds a higher sequence, then could not back it
    with a record of that sequence that verifies (a lying or broken replica; it is ignored)."""

    def __init__(self, message: str, *, claimed: int, got: int | None) -> None:
        super().__init__(message)
        self.claimed = claimed
        self.got = got


# --- keys, storage ---------------------------------------------------------------------------


class KeyFileError(Rlp2pError):
    """A log key file that is missing, unreadable or not an Ed25519 key."""


class StoreError(Rlp2pError):
    """The local store failed or holds something inconsistent."""


class NotFound(Rlp2pError, KeyError):
    """Nothing stored under that key (block, record, log)."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0]) if self.args else "not found"


# --- the wire --------------------------------------------------------------------------------


class ProtocolError(Rlp2pError):
    """The peer broke the stream protocol (framing, unknown method, unexpected answer)."""


class FrameTooLarge(ProtocolError, LimitExceeded):
    """A length prefix over the frame limit; the stream is closed without reading the frame."""


class StreamClosed(ProtocolError):
    """The stream ended, cleanly or mid-frame, before a whole answer arrived."""

    #: answers that had arrived on the stream before it ended (a client call sets it)
    answers: int = 0


class ServerBusy(ProtocolError):
    """A server cannot set memory aside for this request now (its budget is spent); try later or
    another replica."""


class RemoteError(ProtocolError):
    """The peer answered with a typed error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.remote_message = message


# --- the network ---------------------------------------------------------------------------
# raised where rlp2p.p2p dials, opens streams and waits, and where a request batch's deadline
# expires: callers catch Rlp2pError, never trio.TooSlowError or py-libp2p's own exceptions


class Timeout(Rlp2pError):
    """A network operation (a dial, a stream open, a batch of requests) missed its deadline."""


class DialFailure(StreamClosed):
    """No connection or no stream to the peer could be opened (it is down, unreachable, or does
    not speak the protocol). A :class:`StreamClosed` with no answers, as callers saw it before."""


class UnsupportedRequest(RemoteError):
    """The peer does not know an rlp2p extension request (it answered BAD_REQUEST and kept the
    stream): the caller falls back to the specification's requests."""


# --- the operations ------------------------------------------------------------------------


class PublishError(Rlp2pError):
    """A publish did not reach its write quorum; what was stored is kept for the next try."""


class SyncError(Rlp2pError):
    """A sync could not complete from any replica; progress made so far is kept."""


class NoReplicas(SyncError):
    """No storage peer for the log could be found or reached."""


class LogRewritten(PageError):
    """The log is shorter than what the reader already delivered: the publisher rewrote it.

    The head comes from a signed record, so this is the publisher's doing: unlike other page errors,
    another replica will not help, and the reader must decide what to do with what it delivered."""

    def __init__(self, message: str, *, head_seq: int, delivered_seq: int) -> None:
        super().__init__(message)
        self.head_seq = head_seq
        self.delivered_seq = delivered_seq


# --- admission (a storage peer's policy for writers) ---------------------------------------


class WriteRefused(Rlp2pError):
    """A storage peer's admission policy refused a write; another replica may take it.

    ``code`` is the wire code the refusal travels as (``QUOTA`` or ``NOT_ALLOWED``); ``reason``
    names the rule that refused it (for metrics)."""

    code = "QUOTA"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or self.code.lower()


class QuotaExceeded(WriteRefused):
    """The writer (or the log) is over a byte, name or rate quota of this storage peer."""

    code = "QUOTA"


class NotAllowed(WriteRefused):
    """This storage peer does not store writes from this peer, or records of this log."""

    code = "NOT_ALLOWED"


class IncompleteLog(WriteRefused):
    """A record for a log this storage peer does not hold whole: a block its head reaches is
    missing here (collected, or never uploaded). The publisher uploads the log again."""

    code = "INCOMPLETE"


# --- private logs (rlp2p.core.private) -----------------------------------------------------


class BadCapability(DecodeError):
    """A read capability string that does not parse (prefix, name, encoding or size)."""


class CapabilityError(Rlp2pError):
    """The reader's capability cannot open a private log's messages; another replica will not
    help (the blocks matched their addresses: they are what the publisher sealed)."""


class CapabilityRequired(CapabilityError):
    """The log is private (its pages say so): reading it takes its capability."""


class WrongCapability(CapabilityError):
    """Decryption failed under the capability's key: a capability for another log or secret."""


class CapabilityOutdated(CapabilityError):
    """Messages from ``sealed_from`` on are sealed under a later epoch (the publisher rotated the
    key) than the capability reaches; everything before them was delivered."""

    def __init__(self, message: str, *, sealed_from: int, epoch: int, capability_epoch: int) -> None:
        super().__init__(message)
        self.sealed_from = sealed_from
        self.epoch = epoch
        self.capability_epoch = capability_epoch
