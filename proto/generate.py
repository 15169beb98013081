"""Generate rlp2p/pb/ from the .proto files in this folder.

    python proto/generate.py            # rewrite rlp2p/pb/vac/*_pb2.py(i)
    python proto/generate.py --out DIR  # write elsewhere (the staleness test does this)

The generator is grpcio-tools' bundled protoc, pinned in pyproject.toml to the version whose
protoc matches the protobuf runtime (generated code checks the runtime version on import).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = PROTO_DIR.parent / "rlp2p" / "pb"


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("vac/*.proto"))


def generate(out: Path) -> None:
    from grpc_tools import protoc  # imported here: only needed by developers and the test

    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        *(str(p.relative_to(PROTO_DIR)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (out / "vac").mkdir(exist_ok=True)
    (out / "vac" / "__init__.py").write_text("")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    generate(parser.parse_args(argv).out)


if __name__ == "__main__":
    main(sys.argv[1:])
