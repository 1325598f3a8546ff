"""The committed stubs are exactly what ``python -m rpc.gen_protos`` makes from proto/."""

from __future__ import annotations

from pathlib import Path

from rpc import gen_protos


def test_regenerated_stubs_match_committed(tmp_path: Path) -> None:
    fresh = {p.name: p.read_text() for p in gen_protos.generate(tmp_path)}
    committed = {
        p.name: p.read_text()
        for p in gen_protos.DEFAULT_OUT.iterdir()
        if p.suffix in (".py", ".pyi")
    }
    assert sorted(fresh) == sorted(committed), "stale or extra files in rpc/generated/"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"{stale} differ from proto/: run `python -m rpc.gen_protos`"
