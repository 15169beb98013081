"""Signed invitations over real hosts: an invite-only storage peer stores for the publisher it
invited, refuses an uninvited one (NOT_ALLOWED: she falls over to an open peer), and holds an
invited writer to the invitation's quota."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rlp2p.core.admission import AdmissionConfig
from rlp2p.core.invitation import issue
from rlp2p.core.keys import generate_log_key, load_key
from rlp2p.core.page import LogMode
from rlp2p.errors import InvitationError, NotAllowed, PublishError

INVITE_ONLY = AdmissionConfig(mode="invite", quota_bytes_per_peer=None, quota_bytes_all_peers=None, write_rate=None)


def bodies(n: int, start: int = 0) -> list[bytes]:
    return [f"message {i}".encode() for i in range(start, start + n)]


async def test_an_invited_publisher_publishes_and_an_uninvited_one_falls_over(swarm, tmp_path):
    gated = await swarm.start_node("gated", storage=True, bootstrap=(), admission=INVITE_ONLY)
    boot = (gated.addrs[0],)
    open_peer = await swarm.start_node("open", storage=True, bootstrap=boot)
    alice = await swarm.start_node("alice", bootstrap=boot)
    bob = await swarm.start_node("bob", bootstrap=boot)
    operator_key = load_key(tmp_path / "gated" / "node.key")
    token = issue(operator_key, alice.peer_id.to_base58()).token()

    mode = LogMode.paged(4, embed=0)
    order = [gated.peer_id, open_peer.peer_id]
    invited = alice.publisher(generate_log_key(), mode=mode, replicas=1, replica_peers=order, invitations=[token])
    await invited.append(bodies(10))
    report = await invited.publish()
    assert report.stored_on == [gated.peer_id.to_string()]
    assert gated.store.get_record(invited.name) is not None

    stranger = bob.publisher(generate_log_key(), mode=mode, replicas=1, replica_peers=order)
    await stranger.append(bodies(3))
    report = await stranger.publish()
    assert report.stored_on == [open_peer.peer_id.to_string()]
    refused = report.replicas[0]
    assert refused.peer == gated.peer_id.to_string() and not refused.ok and NotAllowed.code in refused.error
    assert gated.store.get_record(stranger.name) is None
    assert gated.admission.refusals.by_reason.get("not_allowed", 0) >= 1
    # Alice's token is hers: Bob presenting it gets nothing for his own log
    copycat = bob.publisher(generate_log_key(), mode=mode, replicas=1, replica_peers=[gated.peer_id], invitations=[token])
    await copycat.append(bodies(1))
    with pytest.raises(PublishError, match="NOT_ALLOWED|not_allowed|invited"):
        await copycat.publish()

    # a reader reads the invited log from the invite-only peer: reads stay open
    carol = await swarm.start_node("carol", bootstrap=boot)
    got: list = []
    await carol.reader(storage_peers=[gated.peer_id]).sync(invited.name, on_message=got.append)
    assert [d.message.body for d in got] == bodies(10)


async def test_an_invitation_bounds_the_writer_and_expires(swarm, tmp_path):
    clock_offset = [timedelta(0)]
    from datetime import datetime, timezone

    def clock() -> datetime:
        return datetime.now(timezone.utc) + clock_offset[0]

    gated = await swarm.start_node("gated", storage=True, bootstrap=(), admission=INVITE_ONLY, clock=clock)
    alice = await swarm.start_node("alice", bootstrap=(gated.addrs[0],))
    key = load_key(tmp_path / "gated" / "node.key")
    expires = int(clock().timestamp()) + 3600
    log_key = generate_log_key()
    publisher = alice.publisher(log_key, mode=LogMode.paged(4, embed=0), replicas=1, replica_peers=[gated.peer_id])
    # an invitation for the log (not the writer), with a quota of about two messages' blocks
    publisher.invitations = {gated.peer_id.to_base58(): issue(key, publisher.name, quota_bytes=2000, expires=expires).signed}
    await publisher.append(bodies(3))
    assert (await publisher.publish()).stored_on == [gated.peer_id.to_string()]
    await publisher.append([b"x" * 3000])
    with pytest.raises(PublishError, match="QUOTA"):
        await publisher.publish()
    # past its expiry the peer refuses the invitation itself
    clock_offset[0] = timedelta(hours=2)
    with pytest.raises(PublishError, match="InvitationError.*expired"):
        await publisher.publish()
    with pytest.raises(InvitationError, match="expired"):
        await alice.peers.present_invitation(gated.peer_id, publisher.invitations[gated.peer_id.to_base58()])
