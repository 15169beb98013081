"""rlp2p: Vac 3/REMOTE-LOG for py-libp2p.

The names an application needs, imported lazily so that ``import rlp2p.core`` stays light::

    from rlp2p import Node, NodeConfig, LogMode, generate_log_key

    async with Node.open("data/alice", config=NodeConfig(bootstrap=[addr])) as node:
        publisher = node.publisher(generate_log_key(), mode=LogMode.paged(64))
        await publisher.append([b"hello"])
        await publisher.publish()
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# The public API: name -> the module that defines it. Everything else is internal; test helpers
# for applications live in rlp2p.testing.
_EXPORTS = {
    # the node and its roles
    "Node": "rlp2p.node.node",
    "NodeConfig": "rlp2p.node.node",
    "Publisher": "rlp2p.node.publisher",
    "PublishReport": "rlp2p.core.publish",
    "ReplicaResult": "rlp2p.core.publish",
    "Reader": "rlp2p.node.reader",
    "SyncReport": "rlp2p.node.reader",
    "LogPoll": "rlp2p.core.poll",
    "PollReport": "rlp2p.node.polling",
    "Delivery": "rlp2p.core.sync",
    # logs, messages, keys
    "LogMode": "rlp2p.core.page",
    "Message": "rlp2p.core.message",
    "message_id": "rlp2p.core.message",
    "generate_log_key": "rlp2p.core.keys",
    "load_key": "rlp2p.core.keys",
    "save_key": "rlp2p.core.keys",
    "log_name": "rlp2p.core.keys",
    "Limits": "rlp2p.limits",
    "open_store": "rlp2p.store",
    # for applications that run their own py-libp2p host
    "full_addrs": "rlp2p.p2p.host",
    "quiet_libp2p_logs": "rlp2p.p2p.host",
    # errors
    "Rlp2pError": "rlp2p.errors",
    "DecodeError": "rlp2p.errors",
    "LimitExceeded": "rlp2p.errors",
    "AddressError": "rlp2p.errors",
    "PageError": "rlp2p.errors",
    "PageDeltaError": "rlp2p.errors",
    "IntegrityError": "rlp2p.errors",
    "HashMismatch": "rlp2p.errors",
    "MessageIdMismatch": "rlp2p.errors",
    "RecordError": "rlp2p.errors",
    "InvalidRecord": "rlp2p.errors",
    "WrongName": "rlp2p.errors",
    "ExpiredRecord": "rlp2p.errors",
    "RecordTooLarge": "rlp2p.errors",
    "StaleRecord": "rlp2p.errors",
    "UnbackedSequence": "rlp2p.errors",
    "KeyFileError": "rlp2p.errors",
    "StoreError": "rlp2p.errors",
    "NotFound": "rlp2p.errors",
    "ProtocolError": "rlp2p.errors",
    "FrameTooLarge": "rlp2p.errors",
    "StreamClosed": "rlp2p.errors",
    "Timeout": "rlp2p.errors",
    "DialFailure": "rlp2p.errors",
    "RemoteError": "rlp2p.errors",
    "UnsupportedRequest": "rlp2p.errors",
    "PublishError": "rlp2p.errors",
    "SyncError": "rlp2p.errors",
    "NoReplicas": "rlp2p.errors",
    "LogRewritten": "rlp2p.errors",
    "ServerBusy": "rlp2p.errors",
    "WriteRefused": "rlp2p.errors",
    "QuotaExceeded": "rlp2p.errors",
    "NotAllowed": "rlp2p.errors",
    "InvitationError": "rlp2p.errors",
    "IncompleteLog": "rlp2p.errors",
    "DataDirLocked": "rlp2p.store.lock",
    # private logs
    "Capability": "rlp2p.core.private",
    "BadCapability": "rlp2p.errors",
    "CapabilityError": "rlp2p.errors",
    "WrongCapability": "rlp2p.errors",
    "CapabilityRequired": "rlp2p.errors",
    "CapabilityOutdated": "rlp2p.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlp2p' has no attribute {name!r}")
    return getattr(import_module(module), name)
