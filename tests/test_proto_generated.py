"""The generated code in rlp2p/pb must be what proto/generate.py makes from proto/ today."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_generator():
    spec = importlib.util.spec_from_file_location("rlp2p_proto_generate", ROOT / "proto" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path):
    generator = _load_generator()
    generator.generate(tmp_path)
    committed = ROOT / "rlp2p" / "pb"
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert fresh, "the generator wrote nothing"
    stale = [str(p) for p in fresh if (committed / p).read_bytes() != (tmp_path / p).read_bytes()]
    assert not stale, f"rlp2p/pb is stale; run `python proto/generate.py`: {stale}"
    extra = sorted(
        str(p.relative_to(committed))
        for p in committed.rglob("*_pb2.py*")
        if not (tmp_path / p.relative_to(committed)).exists()
    )
    assert not extra, f"generated files with no .proto behind them: {extra}"


def test_wire_field_numbers_match_the_specification():
    from rlp2p.pb.vac import cas_pb2, mvds_pb2, ns_pb2, remotelog_pb2

    def numbers(message):
        return {f.name: f.number for f in message.DESCRIPTOR.fields}

    assert numbers(mvds_pb2.Message) == {"group_id": 6001, "timestamp": 6002, "body": 6003}
    assert numbers(mvds_pb2.Payload) == {"acks": 5001, "offers": 5002, "requests": 5003, "messages": 5004}
    assert numbers(cas_pb2.Address) == {"id": 1}
    assert numbers(cas_pb2.Content) == {"data": 1}
    assert numbers(ns_pb2.NameUpdate) == {"name": 1, "content": 2}
    assert numbers(ns_pb2.Query) == {"name": 1}
    assert numbers(ns_pb2.Content) == {"data": 1}
    assert numbers(ns_pb2.Response)["data"] == 1
    assert numbers(remotelog_pb2.RemoteLog)["pair"] == 1
    assert numbers(remotelog_pb2.RemoteLog)["tail"] == 2
    pair = numbers(remotelog_pb2.RemoteLog.Pair)
    assert (pair["remoteHash"], pair["localHash"], pair["data"]) == (1, 2, 3)


def test_spec_bytes_parse_with_our_messages():
    """Bytes of the specification's RemoteLog parse with ours, and our extensions at their
    defaults add no bytes, so an old reader and a new one see the same page."""
    from rlp2p.pb.vac import remotelog_pb2

    # hand-encoded: pair {remoteHash "r", localHash "l", data "d"}, tail "t"
    spec_bytes = b"\x0a\x09\x0a\x01r\x12\x01l\x1a\x01d\x12\x01t"
    parsed = remotelog_pb2.RemoteLog.FromString(spec_bytes)
    assert (parsed.pair[0].remoteHash, parsed.pair[0].localHash, parsed.pair[0].data) == (b"r", b"l", b"d")
    assert parsed.tail == b"t" and parsed.pair[0].seq == 0
    assert parsed.SerializeToString() == spec_bytes
