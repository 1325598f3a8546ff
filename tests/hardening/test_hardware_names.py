"""One hardware-name rule (joulecast.hardware_name), refused where a name enters, before
anything is stored or fitted: AddMeasurements, import, collect, the campaign, fit, Retrain and
PredictEnergy. The names joulecast makes itself stay valid."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import grpc
import pytest
from hardening_harness import TOKEN

from client import convert as client_convert
from collector.hardware import slug, sweep_hardware
from collector.importer import BadImport, GraphCache, Record, import_records
from estimator.artifacts import check_hardware_name as artifact_name
from joulecast.errors import InvalidArgument
from joulecast.measurement import catalogued_gpu_claim, check_row
from joulecast.store import MeasurementStore
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb

AUTH = bearer_metadata(TOKEN)
BAD_NAMES = ("h" * 65_536, "../../evil", "cpu\x00x", "cpü-x", ".", "-flag", "a b", "h" * 129)
GOOD_NAMES = (
    "cpu-amd-epyc",
    "xeon-gold-5120-2c",
    "quadro-rtx6000",
    "h200",
    "replay-t4_epoch",
    "cpu-" + slug("Intel(R) Xeon(R) Gold 5120 CPU @ 2.20GHz"),
    slug("NVIDIA H200"),
    "h" * 128,
)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_names_joulecast_makes_are_valid_everywhere(name: str, make_rows) -> None:
    from joulecast.hardware_name import check_hardware_name

    assert check_hardware_name(name) == name == artifact_name(name)
    row, _ = make_rows("cpu-test")[0]
    gpu = catalogued_gpu_claim(name)
    if gpu is not None:  # a catalogued GPU's id names rows of that GPU only
        row = dataclasses.replace(row, device="cuda", device_name=gpu)
    assert check_row(dataclasses.replace(row, hardware=name)).hardware == name


def test_replay_and_slugged_names_pass_and_a_bad_explicit_one_is_refused() -> None:
    assert sweep_hardware("cpu", "replay", "tests/data/traces/t4_epoch.json") == "replay-t4_epoch"
    with pytest.raises(InvalidArgument, match=re.escape("hardware name '../x'")):
        sweep_hardware("cpu", "cpu-time", None, "../x")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_one_rule_refuses_with_a_short_line(name: str, make_rows) -> None:
    from joulecast.hardware_name import hardware_name_problem

    problem = hardware_name_problem(name)
    assert problem is not None and "\n" not in problem and len(problem) < 300
    row, _ = make_rows("cpu-test")[0]
    with pytest.raises(InvalidArgument, match="hardware name"):
        check_row(dataclasses.replace(row, hardware=name))
    with pytest.raises(InvalidArgument, match="hardware name"):
        artifact_name(name)


def test_add_measurements_refuses_bad_names_and_stores_nothing(
    start_server, make_rows, rpc_error, tmp_path: Path
) -> None:
    db = tmp_path / "m.db"
    served = start_server(db_path=db, profile_workers=0)
    row, graph = make_rows("cpu-test")[0]

    def messages(names):
        return [
            client_convert.message_from_row(
                dataclasses.replace(row, run_key=f"bad/{n}", hardware=name), graph
            )
            for n, name in enumerate(names)
        ]

    names = [name for name in BAD_NAMES if len(name) < 1000]
    reply = served.stub.AddMeasurements(iter(messages(names)), metadata=AUTH, timeout=30)
    assert reply.accepted == 0 and reply.rejected == len(names)
    for result in reply.results:
        assert "hardware name" in result.reason and len(result.reason) < 300, result.reason
    # a 64 KiB name is past the byte budget of a row field: the whole call is refused
    code, details = rpc_error(
        served.stub.AddMeasurements, iter(messages(["h" * 65_536])), metadata=AUTH, timeout=30
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "hardware is 65,536 bytes" in details
    with MeasurementStore(db, read_only=True) as store:
        assert store.count() == 0


def test_retrain_refuses_a_bad_name_before_fitting(start_server, rpc_error, tmp_path: Path) -> None:
    fitted: list[str] = []

    def fit(db: Path, hardware: str, artifacts: Path):
        fitted.append(hardware)
        raise AssertionError("fit must not run for a bad name")

    served = start_server(db_path=tmp_path / "m.db", fit=fit, profile_workers=0)
    for name in ("../../evil", "cpu\x00x", "cpü-x", "h" * 129):
        code, details = rpc_error(
            served.stub.Retrain, pb.RetrainRequest(hardware=name), metadata=AUTH, timeout=10
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "hardware name" in details
    assert fitted == []


def test_predict_refuses_a_name_no_predictor_can_have(start_server, rpc_error, family_graphs):
    served = start_server(profile_workers=0)
    code, details = rpc_error(
        served.stub.PredictEnergy,
        pb.PredictEnergyRequest(
            onnx_model=family_graphs["mlp"], batch_size=8, samples=8, epochs=1, hardware="../x"
        ),
        timeout=10,
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "hardware name" in details


def _import_record(folder: Path, hardware: str) -> Record:
    return Record(
        "rows.csv:2",
        {
            "graph": "g.onnx",
            "phase": "test",
            "batch_size": "8",
            "samples": "64",
            "energy_j": "3.0",
            "energy_source": "rapl",
            "duration_s": "0.5",
            "hardware": hardware,
        },
        folder,
    )


def test_import_uses_the_same_rule(tmp_path: Path, family_graphs) -> None:
    (tmp_path / "g.onnx").write_bytes(family_graphs["mlp"])
    db = tmp_path / "m.db"
    long_ok = "h" * 100  # the importer once stopped at 64 characters
    result = import_records([_import_record(tmp_path, long_ok)], db, graphs=GraphCache())
    assert result.imported == 1
    with pytest.raises(BadImport, match=re.escape("hardware name '../../evil'")):
        import_records([_import_record(tmp_path, "../../evil")], db, graphs=GraphCache())
    with MeasurementStore(db, read_only=True) as store:
        assert store.hardware_names() == [long_ok]


def _refusal(capsys, main, *argv: str) -> str:
    """The one line ``main(argv)`` printed on stderr when it refused (exit 2)."""
    assert main(list(argv)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_collect_campaign_and_fit_refuse_before_anything_is_written(tmp_path, capsys) -> None:
    from collector.campaign.gpu import main as campaign
    from joulecast.cli import main

    db = tmp_path / "runs" / "m.db"
    line = _refusal(
        capsys, main, "collect", "--plan", "smoke", "--device", "cpu", "--meter", "cpu-time",
        "--samples", "8", "--data", "synthetic", "--db", str(db), "--hardware", "../../evil",
    )  # fmt: skip
    assert "hardware name '../../evil'" in line
    assert not db.exists() and not db.parent.exists()
    out = tmp_path / "campaign"
    line = _refusal(
        capsys, campaign, "--device", "cpu", "--plans", "smoke", "--samples", "8",
        "--out", str(out), "--hardware", "cpu\x00x",
    )  # fmt: skip
    assert "hardware name 'cpu\\x00x'" in line and not out.exists()
    (tmp_path / "store.db").write_bytes(b"")
    line = _refusal(
        capsys, main, "fit", "--db", str(tmp_path / "store.db"), "--hardware", "h" * 65_536
    )
    assert "hardware name" in line and len(line) < 400
    assert (tmp_path / "store.db").read_bytes() == b""


def _edge_names(seed: int, count: int) -> list[str]:
    """Names at the rule's edges: every allowed character, the longest length, and random
    strings over the rule's alphabet and just outside it."""
    import random

    rng = random.Random(seed)
    inside = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
    outside = inside + " /\\:\x00\u00fc@+~"
    names = ["0", "a.b_c-d", "9" * 128, "A" + ".-_" * 42, "x" * 127 + "."]
    for _ in range(count):
        alphabet = inside if rng.random() < 0.7 else outside
        names.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 140))))
    return names


@pytest.mark.parametrize("seed", range(4))
def test_a_name_check_row_accepts_is_a_name_publishing_accepts(seed: int, make_rows) -> None:
    row, _ = make_rows("cpu-test")[0]
    accepted = 0
    for name in _edge_names(seed, 200):
        try:
            check_row(dataclasses.replace(row, hardware=name))
        except InvalidArgument:
            continue
        accepted += 1
        assert artifact_name(name) == name
        assert Path(name).name == name and name not in (".", "..")
    assert accepted >= 5  # the five fixed names, at least: the loop checked something


def test_a_name_add_measurements_accepts_is_published_by_retrain(
    start_server, make_rows, tmp_path: Path
) -> None:
    """The longest name of the rule's every character, sent, stored, fitted and published."""
    from estimator.publish import fit_and_publish
    from estimator.service import PredictorRegistry

    name = ("cpu.x_" + "y-" * 70)[:128]
    artifacts, db = tmp_path / "artifacts", tmp_path / "m.db"
    artifacts.mkdir()
    served = start_server(
        registry=PredictorRegistry(artifacts),
        artifacts_dir=artifacts,
        db_path=db,
        fit=fit_and_publish,
        profile_workers=0,
    )
    rows = [
        client_convert.message_from_row(dataclasses.replace(row, hardware=name), graph)
        for row, graph in make_rows(name)
    ]
    reply = served.stub.AddMeasurements(iter(rows), metadata=AUTH, timeout=120)
    assert reply.accepted == len(rows) and reply.rejected == 0
    done = served.stub.Retrain(pb.RetrainRequest(hardware=name), metadata=AUTH, timeout=600)
    assert done.hardware == name and done.version
    assert (artifacts / "predictors" / name / done.version).is_dir()


def test_a_catalogued_gpus_name_is_refused_for_rows_it_did_not_measure(
    start_server, make_rows, tmp_path: Path, capsys
) -> None:
    """``h200`` claims the NVIDIA H200: rows of a CPU, of a replayed trace or of another GPU
    named so would be fitted and answered as its measurements. Every door refuses them."""
    row, graph = make_rows("cpu-test")[0]
    claims = {
        "a CPU's": dataclasses.replace(row, hardware="h200"),
        "a replay's": dataclasses.replace(
            row, hardware="h200", device="cuda", device_name="NVIDIA H200", meter="replay"
        ),
        "another GPU's": dataclasses.replace(
            row, hardware="h200", device="cuda", device_name="NVIDIA H100 80GB HBM3"
        ),
    }
    for whose, claim in claims.items():
        with pytest.raises(InvalidArgument, match="names the catalogued GPU NVIDIA H200"):
            check_row(claim)
            pytest.fail(f"{whose} row named h200 was accepted")
    own = dataclasses.replace(row, hardware="h200", device="cuda", device_name="NVIDIA H200")
    assert check_row(own).hardware == "h200"
    db = tmp_path / "m.db"
    served = start_server(db_path=db, profile_workers=0)
    messages = [
        client_convert.message_from_row(dataclasses.replace(c, run_key=f"claim/{n}"), graph)
        for n, c in enumerate(claims.values())
    ]
    reply = served.stub.AddMeasurements(iter(messages), metadata=AUTH, timeout=30)
    assert reply.accepted == 0 and reply.rejected == len(claims)
    assert all("names the catalogued GPU" in r.reason for r in reply.results)
    with MeasurementStore(db, read_only=True) as store:
        assert store.count() == 0
    from joulecast.cli import main

    store = tmp_path / "runs" / "c.db"
    line = _refusal(
        capsys, main, "collect", "--plan", "smoke", "--device", "cpu", "--meter", "cpu-time",
        "--samples", "8", "--data", "synthetic", "--db", str(store), "--hardware", "h200",
    )  # fmt: skip
    assert "names the catalogued GPU NVIDIA H200" in line and "ran on 'cpu'" in line
    assert not store.exists()
