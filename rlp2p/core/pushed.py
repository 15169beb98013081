"""Whether a pushed head page alone is a push follower's next state (sans-I/O).

A push follower (rlp2p/node/follow.py, ``mesh=False``) rebuilds the new head page from the one it
holds and the messages pushed beside the record, and keeps it only when its address is the head
the record's signature covers. When that page also holds, embedded, every message after the
reader's ``delivered_seq`` (and the publisher truncated nothing the reader lacks), delivering it
is the whole sync: no fetch, no plan to drive. :func:`pushed_deliveries` says so, by handing the
page to a :class:`~rlp2p.core.sync.SyncPlan` (the same checks as any sync: the page's hash, its
decoding, the messages') and taking what it makes ready; anything else is None, and the
follower syncs as before.
"""

from __future__ import annotations

from rlp2p.core.sync import Delivery, SyncPlan
from rlp2p.errors import Rlp2pError
from rlp2p.limits import Limits


def pushed_deliveries(head: bytes, page: bytes, delivered_seq: int, limits: Limits) -> list[Delivery] | None:
    """The messages after ``delivered_seq`` that the head page ``page`` (address ``head``)
    completes on its own, oldest first; None when it does not (a message not embedded, an older
    page to walk, a truncation past the reader, nothing new, a bad page)."""
    plan = SyncPlan(head, delivered_seq, limits)
    try:
        plan.receive(head, page)
    except (Rlp2pError, ValueError):
        return None
    ready = plan.ready()
    if not plan.done or plan.gone is not None or not ready or ready[0].seq != delivered_seq + 1:
        return None
    return ready


__all__ = ["pushed_deliveries"]
