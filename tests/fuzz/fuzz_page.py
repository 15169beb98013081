"""Pages: Page.decode of a vac.remotelog.RemoteLog from an untrusted peer.

A page it accepts must re-encode to bytes that decode to the same page.
"""

from __future__ import annotations

from rlp2p.core.page import Page
from rlp2p.errors import DecodeError, IntegrityError
from rlp2p.limits import Limits
from tests.fuzz import seeds
from tests.fuzz._common import Target

LIMITS = Limits(max_block=64 * 1024, max_message=4096, max_page_pairs=512)


def one_input(data: bytes) -> None:
    page = Page.decode(data, LIMITS)
    again = Page.decode(page.encode(), LIMITS)
    assert again == page, "a decoded page does not survive a round trip"
    for pair in page.pairs:
        if pair.embedded:
            assert pair.message is not None and pair.message.id == pair.local_hash


TARGET = Target("page", one_input, allowed=(DecodeError, IntegrityError), seeds=seeds.pages, max_len=4096)
