"""Page deltas: a RemoteLog page sent as a change of a page the receiver already holds.

The on-store format does not change (every stored page is the specification's page, whole);
only the wire does. Between two publishes the head page of a paged log mostly grows: the new
page is the previous head's pairs with new ones in front (pairs are newest first), maybe with
payloads stripped from pairs that left the embedded window, or, when the head filled up, the
previous head becomes an older page (same pairs, no CAS hint). A ``vac.cas.PageDelta`` says just
that (proto/vac/cas.proto)::

    page.pair = delta.pair ++ base.pair[skip : skip + keep]
                (the oldest ``strip`` kept pairs lose their data; their hashes, when the base
                left them out beside the data, computed from it)
    header    = the base's tail / CAS hint / first_seq / sealed unless the delta gives them

:func:`page_delta` makes one only when applying it gives back exactly the page's bytes and it
is smaller. :func:`apply_page_delta` trusts nothing: every count is checked before anything is
allocated and the result is bounded by ``limits.max_block``; the caller still checks the
result's CID against the one it asked for (:func:`apply_checked`), so a wrong delta is a
HashMismatch, never a wrong page.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError as _PbDecodeError

from collections.abc import Mapping, Sequence

from rlp2p.core.address import address_of
from rlp2p.core.message import Message
from rlp2p.errors import DecodeError, HashMismatch, LimitExceeded, PageDeltaError
from rlp2p.limits import DEFAULT_LIMITS, Limits
from rlp2p.pb.vac import cas_pb2, remotelog_pb2

__all__ = ["MAX_DELTA_BASES", "apply_checked", "apply_page_delta", "page_delta", "upload_deltas"]

_PbRemoteLog = remotelog_pb2.RemoteLog
_PbPair = remotelog_pb2.RemoteLog.Pair
_PbDelta = cas_pb2.PageDelta

#: bases a client may name in one DeltaGet (the server reads at most one of them)
MAX_DELTA_BASES = 4
#: bytes a stripped pair may grow by: two hashes (a CID and an MVDS id) with their tags
_STRIP_GROWTH = 2 * (2 + 64)


def _parse(cls: Any, data: bytes, what: str) -> Any:
    try:
        return cls.FromString(data)
    except (_PbDecodeError, ValueError) as exc:
        raise PageDeltaError(f"{what} does not parse: {exc}") from exc


def _strip(pair: _PbPair, sealed: int, limits: Limits) -> _PbPair:
    """``pair`` by reference: its data dropped, its hashes kept or computed from the data."""
    if not pair.data:
        return pair
    remote = pair.remoteHash or address_of(pair.data)
    local = pair.localHash
    if not local:
        if sealed:
            raise PageDeltaError("a sealed pair to strip has no localHash")
        try:
            local = Message.decode(pair.data, limits).id
        except DecodeError as exc:
            raise PageDeltaError(f"a pair to strip holds no message: {exc}") from exc
    return _PbPair(remoteHash=remote, localHash=local, seq=pair.seq)


def apply_page_delta(base: bytes, delta: bytes, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The page ``delta`` (a serialized ``vac.cas.PageDelta``) makes of ``base`` (a page's bytes).

    Raises :class:`PageDeltaError` on a malformed delta or one that does not fit ``base`` (it
    names another base, counts beyond the base's pairs; a delta naming none is taken against
    ``base``), :class:`LimitExceeded` when the delta,
    the base or the result would be over ``limits``. The result is not checked against any CID:
    see :func:`apply_checked`.
    """
    if len(delta) > limits.max_block:
        raise LimitExceeded("page delta size", len(delta), limits.max_block)
    if len(base) > limits.max_block:
        raise LimitExceeded("base page size", len(base), limits.max_block)
    d = _parse(_PbDelta, delta, "the page delta")
    assert isinstance(d, _PbDelta)
    # an empty base: the one the receiver named (a DeltaGet answer may leave it out)
    if d.base and d.base != address_of(base):
        raise PageDeltaError("the delta names another base page")
    b = _parse(_PbRemoteLog, base, "the base page")
    assert isinstance(b, _PbRemoteLog)
    if d.skip + d.keep > len(b.pair):
        raise PageDeltaError(f"the delta keeps pairs {d.skip}..{d.skip + d.keep} of a base of {len(b.pair)}")
    if d.strip > d.keep:
        raise PageDeltaError(f"the delta strips {d.strip} of {d.keep} kept pairs")
    if len(d.pair) + d.keep > limits.max_page_pairs:
        raise LimitExceeded("pairs in a page", len(d.pair) + d.keep, limits.max_page_pairs)
    kept = b.pair[d.skip : d.skip + d.keep]
    sealed = d.sealed if d.HasField("sealed") else b.sealed
    # the result is at most len(base) + len(delta) + strip * _STRIP_GROWTH bytes (both inputs
    # checked against max_block above, strip against the base's pairs) before its own check
    pairs = [_PbPair(remoteHash=p.remoteHash, localHash=p.localHash, data=p.data, seq=p.seq) for p in d.pair]
    plain = d.keep - d.strip
    pairs += [p if i < plain else _strip(p, sealed, limits) for i, p in enumerate(kept)]
    page = _PbRemoteLog(
        pair=pairs,
        tail=d.tail if d.HasField("tail") else b.tail,
        cas=d.cas if d.new_cas else b.cas,
        first_seq=d.first_seq if d.HasField("first_seq") else b.first_seq,
        sealed=sealed,
    )
    out = page.SerializeToString(deterministic=True)
    if len(out) > limits.max_block:
        raise LimitExceeded("page made by the delta size", len(out), limits.max_block)
    return out


def apply_checked(base: bytes, delta: bytes, address: bytes, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """:func:`apply_page_delta`, then the result checked to be the block of ``address`` (the CID
    asked for, or named by the writer): HashMismatch otherwise."""
    out = apply_page_delta(base, delta, limits)
    if address_of(out) != address:
        raise HashMismatch("the page made by the delta is not the page asked for")
    return out


def page_delta(base: bytes, page: bytes, limits: Limits = DEFAULT_LIMITS) -> bytes | None:
    """A serialized ``PageDelta`` that makes ``page`` of ``base``, or None when there is none
    smaller than ``page`` (unrelated pages, a page that does not parse) or it would not give back
    exactly ``page``'s bytes. Both are pages the caller holds (trusted bytes, parsed anyway)."""
    try:
        b = _PbRemoteLog.FromString(base)
        p = _PbRemoteLog.FromString(page)
    except (_PbDecodeError, ValueError):
        return None
    index = {pair.seq: i for i, pair in enumerate(b.pair) if pair.seq}
    # the first pair of the page the base also holds: the kept run starts there
    j = next((k for k, pair in enumerate(p.pair) if pair.seq in index), len(p.pair))
    skip = index[p.pair[j].seq] if j < len(p.pair) else 0
    keep = min(len(p.pair) - j, len(b.pair) - skip) if j < len(p.pair) else 0
    # strip: from the first kept pair that lost its data, to the end of the run
    strip = 0
    for k in range(keep):
        if b.pair[skip + k].data and not p.pair[j + k].data:
            strip = keep - k
            break
    d = _PbDelta(
        base=address_of(base),
        pair=[
            cas_pb2.DeltaPair(remoteHash=x.remoteHash, localHash=x.localHash, data=x.data, seq=x.seq)
            for x in p.pair[:j]
        ],
        skip=skip,
        keep=keep,
        strip=strip,
    )
    if p.tail != b.tail:
        d.tail = p.tail
    if list(p.cas) != list(b.cas):
        d.new_cas = True
        d.cas.extend(p.cas)
    if p.first_seq != b.first_seq:
        d.first_seq = p.first_seq
    if p.sealed != b.sealed:
        d.sealed = p.sealed
    out = d.SerializeToString(deterministic=True)
    if len(out) >= len(page):
        return None
    try:
        if apply_page_delta(base, out, limits) != page:
            return None
    except DecodeError:
        return None
    return out


def upload_deltas(
    base: bytes | None, pages: Mapping[bytes, bytes], missing: Sequence[bytes], limits: Limits = DEFAULT_LIMITS
) -> dict[bytes, bytes]:
    """The pages a publisher sends as deltas against ``base`` (the head page the replica holds):
    page address -> delta, for the newest MAX_DELTA_BASES pages among ``missing`` (the new head
    and the page the old head became are the newest; older ones share nothing with it)."""
    if base is None:
        return {}
    out: dict[bytes, bytes] = {}
    for address in [a for a in missing if a in pages][-MAX_DELTA_BASES:]:
        delta = page_delta(base, pages[address], limits)
        if delta is not None:
            out[address] = delta
    return out
