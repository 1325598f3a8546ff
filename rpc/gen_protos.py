"""Regenerate the Python stubs of ``proto/`` into ``rpc/generated/`` (one command).

    python -m rpc.gen_protos            # rewrite rpc/generated/
    python -m rpc.gen_protos --out DIR  # write elsewhere (the stub test diffs the two)

grpc_tools' bundled protoc writes ``joulecast/v1/estimator_pb2*.py``; the package path
``joulecast`` would shadow our own package, so the files are flattened into one folder and the
stub's import of the messages is rewritten to ``rpc.generated``. The descriptor keeps its
proto path (``joulecast/v1/estimator.proto``), which is what reflection reports.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
PROTO_FILES = ("joulecast/v1/estimator.proto",)
DEFAULT_OUT = ROOT / "rpc" / "generated"
PACKAGE = "rpc.generated"
INIT_TEXT = '"""Generated from proto/ by ``python -m rpc.gen_protos``; do not edit."""\n'


def generate(out_dir: Path) -> list[Path]:
    """Write the stubs (``*_pb2.py``, ``*_pb2.pyi``, ``*_pb2_grpc.py``) and ``__init__.py``."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        include = Path(protoc.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *PROTO_FILES,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed: {' '.join(args)}")
        for proto in PROTO_FILES:
            rel = Path(proto)
            module = rel.stem + "_pb2"
            proto_pkg = ".".join(rel.parent.parts)
            for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
                src = Path(tmp) / rel.parent / (rel.stem + suffix)
                text = src.read_text()
                text = text.replace(
                    f"from {proto_pkg} import {module}", f"from {PACKAGE} import {module}"
                )
                dest = out_dir / src.name
                dest.write_text(text)
                written.append(dest)
    init = out_dir / "__init__.py"
    init.write_text(INIT_TEXT)
    written.append(init)
    return sorted(written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    if args.out.resolve() == DEFAULT_OUT.resolve() and DEFAULT_OUT.exists():
        shutil.rmtree(DEFAULT_OUT)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
