"""Private logs without a network: capabilities, sealing, keyed ids, and a sync plan over sealed pages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, LogMode, Page, build_log
from rlp2p.core.private import (
    MAX_CAPABILITY,
    SEAL_OVERHEAD,
    SEAL_VERSION,
    Capability,
    Keyring,
    PrivateState,
    new_seed,
    seal_entries,
)
from rlp2p.core.sync import SyncPlan
from rlp2p.errors import (
    BadCapability,
    CapabilityOutdated,
    CapabilityRequired,
    DecodeError,
    HashMismatch,
    MessageIdMismatch,
    PageError,
    WrongCapability,
)

NAME = log_name(generate_log_key().public_key)
PAGED = LogMode.paged(4, embed=2)


def msg(i: int) -> Message:
    return Message(b"group", 1_700_000_000 + i, f"secret body {i}".encode())


def sealed_log(n: int, state: PrivateState, mode: LogMode = PAGED):
    keyring = state.keyring(NAME)
    entries = [LogEntry.from_message(i, msg(i)) for i in range(1, n + 1)]
    return build_log(seal_entries(entries, state, keyring), mode, sealed=SEAL_VERSION)


def run(plan: SyncPlan, blocks: dict[bytes, bytes]) -> list[int]:
    seqs = []
    for _ in range(1000):
        if plan.done:
            break
        for address in plan.wants():
            plan.receive(address, blocks[address])
        for d in plan.ready():
            assert d.message == msg(d.seq) and d.id == msg(d.seq).id
            seqs.append(d.seq)
    assert plan.done
    return seqs


def test_capability_round_trip_and_repr_hides_the_secret():
    cap = Capability(NAME, 3, new_seed())
    text = str(cap)
    assert text.startswith(f"rlp2p1:{NAME}:") and len(text) <= MAX_CAPABILITY
    assert Capability.parse(text) == cap and Capability.parse(f"  {text}\n") == cap
    assert Capability.looks_like(text) and not Capability.looks_like(NAME)
    assert cap.secret.hex() not in repr(cap)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "rlp2p1:",
        f"rlp2p2:{NAME}:aaaa",
        f"rlp2p1:{NAME}",
        f"rlp2p1:notaname:{'a' * 55}",
        f"rlp2p1:{NAME}:{'a' * 54}",  # 33 bytes and a bit
        f"rlp2p1:{NAME}:{'A' * 55}",  # upper case
        f"rlp2p1:{NAME}:{'1' * 55}",  # not base32
        f"rlp2p1:{NAME}:{'a' * 55}:x",
        "rlp2p1:" + "x" * 500,
        f"rlp2p1:{NAME}:{'7' * 55}",  # epoch 0xffff, over MAX_EPOCHS
    ],
    # NAME is a random key's: ids must not change between collections (pytest-xdist's workers)
    ids=lambda text: text.replace(NAME, "NAME"),
)
def test_bad_capabilities_are_typed(text):
    with pytest.raises(BadCapability):
        Capability.parse(text)
    assert issubclass(BadCapability, DecodeError)


def test_sealing_is_deterministic_and_hides_body_and_id():
    keyring = PrivateState(new_seed()).keyring(NAME)
    data = msg(1).encode()
    block, keyed = keyring.seal(0, 1, data)
    assert keyring.seal(0, 1, data) == (block, keyed)  # a rebuild makes the same block
    assert keyring.seal(0, 2, data)[0] != block  # the same body at another seq: unrelated
    assert len(block) == len(data) + SEAL_OVERHEAD
    assert b"secret body" not in block and msg(1).id not in block and keyed != msg(1).id
    opened = keyring.open(block)
    assert (opened.message, opened.data, opened.id, opened.keyed_id) == (msg(1), data, msg(1).id, keyed)


def test_wrong_capability_and_tampering_are_typed():
    state = PrivateState(new_seed())
    block, _ = state.keyring(NAME).seal(0, 1, msg(1).encode())
    with pytest.raises(WrongCapability):
        PrivateState(new_seed()).keyring(NAME).open(block)
    other = log_name(generate_log_key().public_key)
    with pytest.raises(WrongCapability):  # keys are bound to the log name
        Keyring(other, 0, state.keyring(NAME).capability().secret).open(block)
    flipped = bytearray(block)
    flipped[-1] ^= 1
    with pytest.raises(WrongCapability):
        state.keyring(NAME).open(bytes(flipped))
    with pytest.raises(DecodeError):
        state.keyring(NAME).open(block[:10])
    with pytest.raises(DecodeError):
        state.keyring(NAME).open(b"\x02" + block[1:])


def test_epochs_chain_backwards_only():
    state = PrivateState(new_seed()).rotated(2).rotated(5)
    assert state.starts == (1, 3, 6) and state.epoch == 2
    assert [state.epoch_of(s) for s in range(1, 8)] == [0, 0, 1, 1, 1, 2, 2]
    top = state.keyring(NAME)
    blocks = [top.seal(e, e + 1, msg(e).encode())[0] for e in range(3)]
    middle = Keyring.from_capability(Capability.parse(str(PrivateState(state.seed, (1, 3)).keyring(NAME).capability())))
    assert middle.epoch == 1
    assert middle.open(blocks[0]).message == msg(0) and middle.open(blocks[1]).message == msg(1)
    with pytest.raises(CapabilityOutdated) as info:
        middle.open(blocks[2])
    assert (info.value.epoch, info.value.capability_epoch) == (2, 1)
    assert top.open(blocks[0]).message == msg(0)
    # an empty epoch (two rotations in a row) is allowed; starts never decrease
    assert PrivateState(state.seed).rotated(0).rotated(0).starts == (1, 1, 1)
    with pytest.raises(ValueError):
        state.rotated(3)


@pytest.mark.parametrize("mode", [LogMode.paged(4, embed=2), LogMode.paged(3, embed=0), LogMode.fully_replicated()])
def test_a_capability_syncs_a_sealed_log_in_order_once(mode):
    state = PrivateState(new_seed())
    built = sealed_log(10, state, mode)
    everything = b"".join(built.blocks.values())
    for i in range(1, 11):
        assert f"secret body {i}".encode() not in everything and msg(i).id not in everything
    keyring = Keyring.from_capability(state.keyring(NAME).capability())
    assert run(SyncPlan(built.head, 0, keyring=keyring), built.blocks) == list(range(1, 11))
    assert run(SyncPlan(built.head, 6, keyring=keyring), built.blocks) == list(range(7, 11))


def test_a_reader_without_the_capability_is_told_the_log_is_private():
    built = sealed_log(6, PrivateState(new_seed()), LogMode.paged(4, embed=None))
    assert all(Page.decode(data).sealed == SEAL_VERSION for _, data in built.pages)
    plan = SyncPlan(built.head, 0)
    with pytest.raises(CapabilityRequired):
        run(plan, built.blocks)
    # a capability for a public log is refused too
    entries = [LogEntry.from_message(i, msg(i)) for i in range(1, 4)]
    public = build_log(entries, LogMode.paged(4, embed=None))
    assert Page.decode(public.blocks[public.head]).sealed == 0
    with pytest.raises(WrongCapability):
        run(SyncPlan(public.head, 0, keyring=PrivateState(new_seed()).keyring(NAME)), public.blocks)


def test_a_sealed_page_pointing_at_the_empty_block_is_refused():
    from rlp2p.core.page import EMPTY_ADDRESS, Pair

    page = Page((Pair(EMPTY_ADDRESS, bytes(32), 1),), sealed=SEAL_VERSION)
    with pytest.raises(PageError):
        Page.decode(page.encode())


def test_wrong_capability_in_the_plan_is_typed_and_changes_nothing():
    built = sealed_log(6, PrivateState(new_seed()), LogMode.paged(4, embed=0))
    plan = SyncPlan(built.head, 0, keyring=PrivateState(new_seed()).keyring(NAME))
    with pytest.raises(WrongCapability):
        run(plan, built.blocks)


def test_after_rotation_an_old_capability_reads_what_it_may_and_gets_a_signal():
    state = PrivateState(new_seed())
    old = state.keyring(NAME).capability()
    state = state.rotated(5)
    for mode in (LogMode.paged(4, embed=0), LogMode.paged(4, embed=None), LogMode.paged(2, embed=3)):
        built = sealed_log(9, state, mode)
        plan = SyncPlan(built.head, 0, keyring=Keyring.from_capability(old))
        assert run(plan, built.blocks) == [1, 2, 3, 4, 5]
        signal = plan.outdated()
        assert signal is not None and (signal.sealed_from, signal.epoch, signal.capability_epoch) == (6, 1, 0)
        # the new capability reads everything, the old epochs too
        plan = SyncPlan(built.head, 0, keyring=Keyring.from_capability(state.keyring(NAME).capability()))
        assert run(plan, built.blocks) == list(range(1, 10)) and plan.outdated() is None


def test_a_swapped_block_and_a_forged_keyed_id_are_refused():
    state = PrivateState(new_seed())
    built = sealed_log(4, state, LogMode.paged(4, embed=0))
    keyring = state.keyring(NAME)
    plan = SyncPlan(built.head, 0, keyring=keyring)
    plan.receive(built.head, built.blocks[built.head])
    wanted = plan.wants()
    with pytest.raises(HashMismatch):  # a storage peer cannot change a sealed block
        plan.receive(wanted[0], built.blocks[wanted[1]])
    # a page whose localHash is not the keyed id of what is sealed: refused after opening
    entries = seal_entries([LogEntry.from_message(1, msg(1))], state, keyring)
    entries[0].__dict__["local_hash"] = msg(1).id  # the plain H1: it must not be accepted
    bad = build_log(entries, LogMode.paged(4, embed=0), sealed=SEAL_VERSION)
    plan = SyncPlan(bad.head, 0, keyring=keyring)
    with pytest.raises(MessageIdMismatch):
        run(plan, bad.blocks)


def test_replay_with_a_small_window_reads_and_stops_at_the_later_epoch():
    state = PrivateState(new_seed()).rotated(23)
    built = sealed_log(30, state, LogMode.paged(3, embed=1))
    old = Keyring.from_capability(PrivateState(state.seed).keyring(NAME).capability())
    plan = SyncPlan(built.head, 4, window=2, keyring=old)
    assert run(plan, built.blocks) == list(range(5, 24))
    assert plan.replaying and plan.outdated().sealed_from == 24
    plan = SyncPlan(built.head, 4, window=2, keyring=state.keyring(NAME))
    assert run(plan, built.blocks) == list(range(5, 31)) and plan.outdated() is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=260), st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567:", max_size=120).map(lambda t: f"rlp2p1:{NAME}:{t}")))
def test_any_text_parses_or_is_a_bad_capability(text):
    try:
        cap = Capability.parse(text)
    except BadCapability:
        return
    assert str(cap) == text.strip()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_block_opens_or_is_refused_typed(block):
    keyring = PrivateState(bytes(32)).keyring(NAME)
    with pytest.raises((DecodeError, WrongCapability, CapabilityOutdated)):
        keyring.open(block)
