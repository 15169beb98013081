"""Embed rlp2p in a py-libp2p application that runs its own host and its own protocol.

The application here is a tiny chat: each instance runs a libp2p host of its own, with a stream
handler for ``/chat/1.0.0`` that prints what it receives. rlp2p rides on that same host
(``Node(store, host=host)``): the app keeps one peer id, one set of connections, and gains
remote logs. Three storage peers run in this process (``LocalSwarm``), as a deployment would run
them elsewhere (``rlp2p serve``).

The story: Bob's app is online; Alice's app publishes three messages to her log, tells Bob the
log's name over chat, and goes offline. Bob then reads the log from the storage peers alone.

Run: ``python examples/embed_in_app.py`` (a few seconds; binds 127.0.0.1 only; its temporary
folder is removed at the end).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.peerinfo import info_from_p2p_addr

from rlp2p import LogMode, Node, NodeConfig, full_addrs, generate_log_key, open_store, quiet_libp2p_logs
from rlp2p.testing import LocalSwarm

CHAT = TProtocol("/chat/1.0.0")
MAX_CHAT = 4096  # bytes a chat message may have; the handler stops reading beyond it
TIMEOUT = 10.0


class ChatApp:
    """An application with its own libp2p host and protocol, and rlp2p embedded on that host."""

    def __init__(self, name: str, data_dir: Path, bootstrap: Sequence[str]) -> None:
        self.name = name
        self.data_dir = data_dir
        self.bootstrap = tuple(bootstrap)
        # the application's host, made the application's way (this config avoids a 250 ms
        # delay on every dial in py-libp2p 0.8.1)
        self.host = new_host(
            key_pair=create_new_key_pair(),
            connection_config=ConnectionConfig(max_connections_per_peer=1),
        )
        self.inbox_send, self.inbox = trio.open_memory_channel[str](16)
        self.node: Node | None = None

    async def _on_chat(self, stream) -> None:  # the app's own protocol: read until EOF, print
        peer = stream.muxed_conn.peer_id
        data = b""
        try:
            with trio.move_on_after(TIMEOUT):
                while len(data) <= MAX_CHAT:
                    try:
                        data += await stream.read(1024)
                    except StreamEOF:
                        break
        finally:
            await stream.close()
        text = data[:MAX_CHAT].decode("utf-8", "replace")
        print(f"[{self.name}] chat from {str(peer)[:16]}...: {text}", flush=True)
        self.inbox_send.send_nowait(text)

    async def say(self, addr: str, text: str) -> None:
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        with trio.fail_after(TIMEOUT):
            await self.host.connect(info)
            stream = await self.host.new_stream(info.peer_id, [CHAT])
            await stream.write(text.encode())
            await stream.close()

    @property
    def addr(self) -> str:
        return full_addrs(self.host)[0]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ChatApp]:
        try:
            async with self.host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
                self.host.set_stream_handler(CHAT, self._on_chat)
                store = open_store(self.data_dir)
                try:
                    # rlp2p on the application's host: the node neither creates nor runs a host
                    node = Node(store, host=self.host, config=NodeConfig(bootstrap=self.bootstrap, timeout=TIMEOUT))
                    async with node:
                        self.node = node
                        yield self
                finally:
                    self.node = None
                    store.close()
        finally:
            # py-libp2p 0.8.1's host.run() leaves the listener and connections open when it
            # exits; close them, or peers keep talking to a host that no longer answers
            await self.host.get_network().close()


async def main() -> int:
    quiet_libp2p_logs(50)
    with tempfile.TemporaryDirectory(prefix="rlp2p-embed-") as tmp:
        root = Path(tmp)
        async with trio.open_nursery() as nursery:
            swarm = LocalSwarm(root, nursery, timeout=TIMEOUT)
            try:
                storage = await swarm.add_storage(3)
                print(f"{len(storage)} storage peers are up", flush=True)

                bob = ChatApp("bob", root / "bob", swarm.bootstrap)
                async with bob.running():
                    print(f"[bob] app online at {bob.addr}", flush=True)

                    alice = ChatApp("alice", root / "alice", swarm.bootstrap)
                    key = generate_log_key()
                    async with alice.running():
                        assert alice.node is not None
                        publisher = alice.node.publisher(key, mode=LogMode.paged(2, embed=1))
                        await publisher.append([b"hi Bob", b"the remote log works", b"while I am offline too"])
                        report = await publisher.publish()
                        print(
                            f"[alice] published {report.messages} messages to {report.name} "
                            f"on {len(report.stored_on)} storage peers",
                            flush=True,
                        )
                        await alice.say(bob.addr, f"read my log {publisher.name}")
                    print("[alice] app offline", flush=True)

                    with trio.fail_after(TIMEOUT):
                        chat = await bob.inbox.receive()
                    name = chat.rsplit(" ", 1)[-1]
                    assert bob.node is not None
                    # each message is handed over as it arrives (at least once: see Reader.sync)
                    sync = await bob.node.reader().sync(
                        name, on_message=lambda d: print(f"[bob] #{d.seq}: {d.message.body.decode()}", flush=True)
                    )
                    print(f"[bob] got {sync.new_messages} messages from {name} while alice was offline", flush=True)
                    poll = await bob.node.reader().sync(name)
                    print(f"[bob] polled again: {'up to date' if poll.up_to_date else 'new messages?!'}", flush=True)
                ok = sync.new_messages == 3 and poll.up_to_date
            finally:
                await swarm.close()
    print("embed_in_app: done" if ok else "embed_in_app: FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(trio.run(main))
