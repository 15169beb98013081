"""Limits on everything read from the wire or from a peer's bytes.

Every decoder takes a :class:`Limits`; every size and count it reads is checked against it before
anything is allocated for it. The defaults fit a phone: a 10,000-message fully replicated log
with 256-byte bodies embedded is about 3 MB, well under ``max_block``.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Limits:
    #: largest CAS block (a serialized page or message) we store, send or accept
    max_block: int = 8 * MiB
    #: largest serialized vac.mvds.Message
    max_message: int = 1 * MiB
    #: most pairs one RemoteLog page may hold
    max_page_pairs: int = 100_000
    #: most pages a reader walks back through `tail` in one sync
    max_pages_walk: int = 1_000_000
    #: IPNS records are at most 10 KiB (ipfs/specs IPNS record, "Record Size Limit")
    max_record: int = 10 * KiB
    #: longest log name (a base58 peer id is about 52 characters)
    max_name: int = 256
    #: largest length-prefixed frame on a CAS or NS stream (a block plus its envelope)
    max_frame: int = 8 * MiB + 4 * KiB
    #: requests a server accepts on one stream before it answers (pipelining depth)
    max_pipeline: int = 256
    #: requests a server serves on one stream in all, so a stream cannot be held forever
    max_requests_per_stream: int = 1_000_000


DEFAULT_LIMITS = Limits()
