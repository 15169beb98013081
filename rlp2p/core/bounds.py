"""Bounds a storage peer puts on the records it keeps (issue 10, item 5).

A record signed by the log's own key could otherwise pin itself on a storage peer forever: a
validity in year 9999 never expires, and a TTL of 2^64-1 ns tells caches to keep it for ever.
Pure policy: the caller passes its clock's ``now``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rlp2p.core.record import RecordInfo
from rlp2p.errors import InvalidRecord
from rlp2p.limits import Limits


def check_record_bounds(info: RecordInfo, now: datetime, limits: Limits) -> None:
    """Raise InvalidRecord if the record's TTL or validity is beyond ``limits``."""
    max_ttl_ns = limits.max_record_ttl_s * 1_000_000_000
    if info.ttl_ns > max_ttl_ns:
        raise InvalidRecord(f"record TTL {info.ttl_ns} ns is over this peer's maximum of {limits.max_record_ttl_s} s")
    latest = now + timedelta(seconds=limits.max_record_validity_s)
    if info.validity > latest:
        raise InvalidRecord(
            f"record valid until {info.validity.isoformat()}, more than "
            f"{limits.max_record_validity_s // 86400} days after this peer's clock ({now.isoformat()})"
        )
