"""Private logs: sealed messages, keyed message ids and read capabilities (pure, no I/O).

A private log's blocks are *sealed* messages: ``version (1) | epoch (2, big-endian) | nonce (12) |
AES-256-GCM-SIV(serialized vac.mvds.Message)``, the first three bytes authenticated as associated
data. Storage peers store, hash-check and serve them like any block; only a capability opens them.

Keys. The publisher draws one random 32-byte *seed* when the log is created. Epoch ``e``'s secret
is ``s_e = H^(MAX_EPOCHS - 1 - e)(seed)`` with ``H = sha256("rlp2p/private/chain" | .)``, so
``s_(e-1) = H(s_e)``: whoever holds ``s_e`` derives every earlier epoch's secret and no later one.
A capability carries ``(name, e, s_e)``. From an epoch secret HKDF-SHA256 derives three keys, each
bound to the log name: the AEAD content key, the nonce key and the id key.

Nonces are synthetic: ``HMAC(nonce key, seq | message)[:12]``. Sealing is thus a pure function of
(epoch, seq, message), so a publisher that lays out a page again makes byte-identical blocks and
CIDs (the publish path relies on that), and the same body at two seqs gives two unrelated blocks.
AES-GCM-SIV is chosen because it stays safe if a nonce ever repeats (it then only shows that two
sealed messages are equal), which a derived nonce makes a design input rather than an accident.

Ids. A page's ``localHash`` in a private log is ``HMAC-SHA256(id key, H1)``: 32 bytes as before,
but nobody without the capability can confirm that a known message is in the log. The reader opens
each block and checks that the keyed id of the message inside equals the pair's ``localHash``.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import os
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rlp2p.core.keys import name_to_peer_id
from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry
from rlp2p.errors import (
    BadCapability,
    CapabilityOutdated,
    DecodeError,
    LimitExceeded,
    WrongCapability,
)
from rlp2p.limits import DEFAULT_LIMITS, Limits

SEAL_VERSION = 1
CAPABILITY_PREFIX = "rlp2p1"
SECRET_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
#: epochs a log can have: the length of the hash chain fixed at creation (rotations are rare)
MAX_EPOCHS = 1024
_HEADER = struct.Struct(">BH")
#: bytes a sealed block adds to its message
SEAL_OVERHEAD = _HEADER.size + NONCE_SIZE + TAG_SIZE
#: characters of a capability string at most (checked before any decoding)
MAX_CAPABILITY = 200
_CAP_PAYLOAD = 2 + SECRET_SIZE
_B32 = re.compile(r"[a-z2-7]+")
_CHAIN = b"rlp2p/private/chain"


def _check_epoch(epoch: int) -> None:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < MAX_EPOCHS:
        raise ValueError(f"epoch must be an int in 0..{MAX_EPOCHS - 1}, got {epoch!r}")


def chain_back(secret: bytes, steps: int) -> bytes:
    """The epoch secret ``steps`` epochs before ``secret``'s."""
    for _ in range(steps):
        secret = hashlib.sha256(_CHAIN + secret).digest()
    return secret


def epoch_secret(seed: bytes, epoch: int) -> bytes:
    """Epoch ``epoch``'s secret from the log's seed (the top of the chain)."""
    _check_epoch(epoch)
    if len(seed) != SECRET_SIZE:
        raise ValueError(f"a seed is {SECRET_SIZE} bytes, got {len(seed)}")
    return chain_back(seed, MAX_EPOCHS - 1 - epoch)


def new_seed() -> bytes:
    return os.urandom(SECRET_SIZE)


# --- capabilities -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability:
    """What a reader needs to read a private log: its name and one epoch's secret.

    Text form: ``rlp2p1:<name>:<base32(epoch as 2 bytes | secret)>`` (RFC 4648 base32, lower
    case, no padding): it reads every message sealed in epochs ``0..epoch``."""

    name: str
    epoch: int
    secret: bytes

    def __post_init__(self) -> None:
        _check_epoch(self.epoch)
        if not isinstance(self.secret, bytes) or len(self.secret) != SECRET_SIZE:
            raise ValueError(f"a capability's secret is {SECRET_SIZE} bytes")

    def __str__(self) -> str:
        raw = self.epoch.to_bytes(2, "big") + self.secret
        text = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
        return f"{CAPABILITY_PREFIX}:{self.name}:{text}"

    def __repr__(self) -> str:  # a capability is a secret: keep it out of logs and tracebacks
        return f"Capability(name={self.name!r}, epoch={self.epoch})"

    @staticmethod
    def looks_like(text: str) -> bool:
        """Whether ``text`` is meant as a capability rather than a log name."""
        return isinstance(text, str) and text.startswith(CAPABILITY_PREFIX + ":")

    @classmethod
    def parse(cls, text: str, limits: Limits = DEFAULT_LIMITS) -> Capability:
        """Parse a capability string; :class:`BadCapability` for anything malformed."""
        if not isinstance(text, str):
            raise BadCapability(f"a capability is a str, got {type(text).__name__}")
        text = text.strip()
        if len(text) > MAX_CAPABILITY:
            raise BadCapability(f"a capability is at most {MAX_CAPABILITY} characters, got {len(text)}")
        parts = text.split(":")
        if len(parts) != 3 or parts[0] != CAPABILITY_PREFIX:
            raise BadCapability(f"a capability reads {CAPABILITY_PREFIX}:<name>:<key>")
        name, key = parts[1], parts[2]
        try:
            name_to_peer_id(name, limits=limits)
        except DecodeError as exc:
            raise BadCapability(f"the capability's log name: {exc}") from exc
        if not _B32.fullmatch(key):
            raise BadCapability("the capability's key is not lower-case base32")
        padded = key.upper() + "=" * (-len(key) % 8)
        try:
            raw = base64.b32decode(padded)
        except ValueError as exc:
            raise BadCapability(f"the capability's key is not base32: {exc}") from exc
        if len(raw) != _CAP_PAYLOAD:
            raise BadCapability(f"the capability's key is {len(raw)} bytes, not {_CAP_PAYLOAD}")
        epoch = int.from_bytes(raw[:2], "big")
        if epoch >= MAX_EPOCHS:
            raise BadCapability(f"epoch {epoch} is over the most a log has ({MAX_EPOCHS - 1})")
        cap = cls(name=name, epoch=epoch, secret=raw[2:])
        if str(cap) != text:  # one text per capability (no trailing bits)
            raise BadCapability("the capability's key is not in canonical base32")
        return cap


# --- keys, sealing, opening ---------------------------------------------------------------------


def _hkdf(secret: bytes, label: bytes, name: str) -> bytes:
    info = b"rlp2p/private/v1/" + label + b"/" + name.encode("ascii")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


class _EpochKeys:
    __slots__ = ("aead", "id_key", "nonce_key")

    def __init__(self, name: str, secret: bytes) -> None:
        self.aead = AESGCMSIV(_hkdf(secret, b"content", name))
        self.nonce_key = _hkdf(secret, b"nonce", name)
        self.id_key = _hkdf(secret, b"id", name)


@dataclass(frozen=True, slots=True)
class Opened:
    """A sealed block, opened and checked."""

    message: Message
    #: the serialized message (the plaintext)
    data: bytes
    #: H1, the MVDS id
    id: bytes
    #: the keyed id a pair's localHash carries
    keyed_id: bytes
    epoch: int


class Keyring:
    """The keys of one private log for epochs ``0..epoch``: a publisher's (from the seed) or a
    reader's (from a capability). Derived keys are cached (at most MAX_EPOCHS)."""

    def __init__(self, name: str, epoch: int, secret: bytes) -> None:
        _check_epoch(epoch)
        self.name = name
        self.epoch = epoch
        self._secret = secret
        self._keys: dict[int, _EpochKeys] = {}

    @classmethod
    def from_capability(cls, capability: Capability) -> Keyring:
        return cls(capability.name, capability.epoch, capability.secret)

    @classmethod
    def from_seed(cls, name: str, seed: bytes, epoch: int) -> Keyring:
        return cls(name, epoch, epoch_secret(seed, epoch))

    def capability(self) -> Capability:
        return Capability(self.name, self.epoch, self._secret)

    def _epoch_keys(self, epoch: int) -> _EpochKeys:
        keys = self._keys.get(epoch)
        if keys is None:
            keys = _EpochKeys(self.name, chain_back(self._secret, self.epoch - epoch))
            self._keys[epoch] = keys
        return keys

    def keyed_id(self, epoch: int, message_id: bytes) -> bytes:
        return hmac.new(self._epoch_keys(epoch).id_key, message_id, hashlib.sha256).digest()

    def seal(self, epoch: int, seq: int, data: bytes) -> tuple[bytes, bytes]:
        """Seal the serialized message ``data`` at ``seq``: (block, keyed id). Deterministic."""
        _check_epoch(epoch)
        if epoch > self.epoch:
            raise ValueError(f"epoch {epoch} is after this keyring's {self.epoch}")
        message = Message.decode(data, Limits(max_message=max(len(data), 1)))
        keys = self._epoch_keys(epoch)
        nonce = hmac.new(keys.nonce_key, seq.to_bytes(8, "big") + data, hashlib.sha256).digest()[:NONCE_SIZE]
        header = _HEADER.pack(SEAL_VERSION, epoch)
        block = header + nonce + keys.aead.encrypt(nonce, data, header)
        return block, self.keyed_id(epoch, message.id)

    def open(self, block: bytes, limits: Limits = DEFAULT_LIMITS) -> Opened:
        """Open a sealed block. Raises :class:`LimitExceeded`, :class:`DecodeError` (not a sealed
        block), :class:`CapabilityOutdated` (a later epoch; ``sealed_from`` 0: the caller knows the
        seq) or :class:`WrongCapability` (the key does not open it)."""
        if len(block) > limits.max_message:
            raise LimitExceeded("sealed message size", len(block), limits.max_message)
        if len(block) < SEAL_OVERHEAD:
            raise DecodeError(f"a sealed message is at least {SEAL_OVERHEAD} bytes, got {len(block)}")
        version, epoch = _HEADER.unpack_from(block)
        if version != SEAL_VERSION:
            raise DecodeError(f"sealed message version {version}, this reader knows {SEAL_VERSION}")
        if epoch >= MAX_EPOCHS:
            raise DecodeError(f"sealed message epoch {epoch} is over {MAX_EPOCHS - 1}")
        if epoch > self.epoch:
            raise CapabilityOutdated(
                f"sealed under epoch {epoch}; the capability reads epochs up to {self.epoch}",
                sealed_from=0,
                epoch=epoch,
                capability_epoch=self.epoch,
            )
        keys = self._epoch_keys(epoch)
        header, nonce = block[: _HEADER.size], block[_HEADER.size : _HEADER.size + NONCE_SIZE]
        try:
            data = keys.aead.decrypt(nonce, block[_HEADER.size + NONCE_SIZE :], header)
        except InvalidTag:
            raise WrongCapability(
                f"the capability for {self.name} does not open a message sealed under epoch {epoch}"
            ) from None
        message = Message.decode(data, limits)
        mid = message.id
        return Opened(message, data, mid, self.keyed_id(epoch, mid), epoch)


# --- the publisher's private state -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrivateState:
    """A private log as its publisher records it: the seed and where each epoch starts.

    ``starts`` holds ``first_seq`` of epochs 0, 1, ... (epoch 0 starts at seq 1), ascending."""

    seed: bytes
    starts: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        if len(self.seed) != SECRET_SIZE:
            raise ValueError(f"a seed is {SECRET_SIZE} bytes")
        if not self.starts or self.starts[0] != 1 or list(self.starts) != sorted(self.starts):
            raise ValueError(f"epoch starts must begin at 1 and never decrease, got {self.starts}")
        if len(self.starts) > MAX_EPOCHS:
            raise ValueError(f"at most {MAX_EPOCHS} epochs")

    @property
    def epoch(self) -> int:
        """The current epoch: new messages are sealed under it."""
        return len(self.starts) - 1

    def epoch_of(self, seq: int) -> int:
        return bisect.bisect_right(self.starts, seq) - 1

    def rotated(self, length: int) -> PrivateState:
        """A new epoch (a fresh secret) for the messages from seq ``length + 1`` on. An epoch may
        stay empty (two rotations with no message between): starts never decrease."""
        if len(self.starts) >= MAX_EPOCHS:
            raise ValueError(f"the log has used all of its {MAX_EPOCHS} epochs")
        if length + 1 < self.starts[-1]:
            raise ValueError(f"the log has {length} messages but epoch {self.epoch} starts at {self.starts[-1]}")
        return PrivateState(self.seed, (*self.starts, length + 1))

    def keyring(self, name: str) -> Keyring:
        return Keyring.from_seed(name, self.seed, self.epoch)


def seal_entries(entries: list[LogEntry], state: PrivateState, keyring: Keyring) -> list[LogEntry]:
    """The private log's entries for :func:`~rlp2p.core.page.build_pages`: each message sealed
    under its seq's epoch, its ``local_hash`` the keyed id. Deterministic, so a rebuild makes the
    same pages."""
    out = []
    for entry in entries:
        block, keyed = keyring.seal(state.epoch_of(entry.seq), entry.seq, entry.data)
        sealed = LogEntry(entry.seq, block)
        sealed.__dict__["local_hash"] = keyed  # the cached_property, known without opening
        out.append(sealed)
    return out
