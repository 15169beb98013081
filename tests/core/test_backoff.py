"""The bounded exponential back-off schedule (rlp2p.core.backoff)."""

from __future__ import annotations

import pytest

from rlp2p.core.backoff import Backoff


def test_delays_double_up_to_the_cap_and_stop_after_the_tries():
    backoff = Backoff(first=0.5, cap=3.0, tries=6)
    assert list(backoff.delays()) == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.total == 9.5
    assert list(Backoff(first=1.0, cap=1.0, tries=1).delays()) == []  # one try, no wait


@pytest.mark.parametrize("args", [(0.0, 1.0, 3), (2.0, 1.0, 3), (1.0, 2.0, 0), (-1.0, 2.0, 2)])
def test_nonsense_is_refused(args):
    with pytest.raises(ValueError):
        Backoff(*args)
