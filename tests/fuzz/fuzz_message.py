"""Messages: Message.decode of a serialized vac.mvds.Message (an embedded payload or a block)."""

from __future__ import annotations

from rlp2p.core.message import MESSAGE_ID_SIZE, Message
from rlp2p.errors import DecodeError
from rlp2p.limits import Limits
from tests.fuzz import seeds
from tests.fuzz._common import Target

LIMITS = Limits(max_message=2048)


def _shape(message: Message) -> list[str]:
    """Branches on what was decoded: the parse itself is protobuf's C code, which coverage cannot
    see, so these let the fuzzer tell inputs apart by their outcome."""
    shape = []
    for field, value in (("group", message.group_id), ("body", message.body)):
        if not value:
            shape.append(f"no {field}")
        elif len(value) < 32:
            shape.append(f"short {field}")
        else:
            shape.append(f"long {field}")
    if message.timestamp < 0:
        shape.append("negative")
    elif message.timestamp >= 2**32:
        shape.append("large")
    return shape


def one_input(data: bytes) -> None:
    message = Message.decode(data, LIMITS)
    _shape(message)
    assert len(message.id) == MESSAGE_ID_SIZE
    assert Message.decode(message.encode(), Limits(max_message=len(data) + 64)) == message


def _seeds() -> list[bytes]:
    return [m.encode() for m in seeds.messages()]


TARGET = Target("message", one_input, allowed=(DecodeError,), seeds=_seeds, max_len=1024, instrument=(_shape,))
