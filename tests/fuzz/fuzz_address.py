"""CAS addresses: binary CIDs (check, parse, text forms) and block verification.

Input: one byte choosing the function, then its argument. Whatever is accepted must round-trip
through the text form, and the fast check and the full parse must agree.
"""

from __future__ import annotations

from rlp2p.core.address import (
    address_from_text,
    address_of,
    address_to_text,
    check_address,
    parse_address,
    verify_block,
)
from rlp2p.errors import AddressError, HashMismatch
from tests.fuzz import seeds
from tests.fuzz._common import Target


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 4, data[1:]
    if mode == 0:
        check_address(rest)
        assert address_from_text(address_to_text(rest)) == rest
    elif mode == 1:
        address = address_from_text(rest.decode("latin-1"))
        check_address(address)
    elif mode == 2:
        verify_block(rest[:36], rest[36:])
        assert address_of(rest[36:]) == rest[:36]
    else:
        parse_address(rest)
        check_address(rest)


def _seeds() -> list[bytes]:
    out = []
    for address in seeds.addresses():
        out += [b"\x00" + address, b"\x01" + address_to_text(address).encode(), b"\x03" + address]
        out.append(b"\x01" + address_to_text(address).upper().encode())
    out += [b"\x02" + address_of(b"x") + b"x", b"\x02" + address_of(b"") ]
    return out


TARGET = Target("address", one_input, allowed=(AddressError, HashMismatch), seeds=_seeds, max_len=128)
