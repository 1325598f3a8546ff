"""Who may change state, what the logs show, and TLS with a certificate made here."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from hardening_harness import TOKEN

from client import convert as client_convert
from client.remote import EstimatorClient, RemoteError
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb
from rpc.generated import estimator_pb2_grpc as pb_grpc

BAD_METADATA = [
    ((), "missing"),
    (bearer_metadata("wrong"), "invalid token"),
    (bearer_metadata(TOKEN[:-1]), "invalid token"),  # a prefix of the right one
    (bearer_metadata(TOKEN + "x"), "invalid token"),
    (bearer_metadata(""), "invalid token"),
    ((("authorization", "bearer " + TOKEN),), "Bearer"),  # wrong scheme case
    ((("authorization", "Basic " + TOKEN),), "Bearer"),
    ((("authorization", TOKEN),), "Bearer"),
]


def test_mutating_rpcs_need_the_token_and_the_token_is_never_logged(
    spawn_server, fitted_copy, make_rows, rpc_error
) -> None:
    """Against ``joulecast -v serve`` (debug logging on): every wrong credential is
    UNAUTHENTICATED and stores nothing; the right one works; stderr never shows the token."""
    artifacts, db = fitted_copy
    server = spawn_server(artifacts, db, verbose=True)
    rows = make_rows("cpu-test", tag="access")[:4]
    messages = [client_convert.message_from_row(r, g) for r, g in rows]
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.EnergyEstimatorStub(channel)
        for metadata, needle in BAD_METADATA:
            code, details = rpc_error(
                stub.AddMeasurements, iter(messages), metadata=metadata, timeout=30
            )
            assert code == grpc.StatusCode.UNAUTHENTICATED and needle in details, details
            assert TOKEN not in details
            code, details = rpc_error(
                stub.Retrain, pb.RetrainRequest(hardware="cpu-test"), metadata=metadata, timeout=30
            )
            assert code == grpc.StatusCode.UNAUTHENTICATED and TOKEN not in details
        reply = stub.AddMeasurements(iter(messages), metadata=bearer_metadata(TOKEN), timeout=60)
        assert reply.accepted == len(messages)
        # Predicting needs no token.
        stub.PredictEnergy(
            pb.PredictEnergyRequest(onnx_model=rows[0][1], batch_size=8, samples=64, epochs=1),
            timeout=60,
        )
    server.proc.terminate()
    server.proc.wait(30)
    log = server.stderr()
    assert "UNAUTHENTICATED" in log or "invalid token" in log  # debug logging was on
    assert TOKEN not in log
    assert TOKEN[:8] not in log


# -- TLS ------------------------------------------------------------------------------------


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key): a CA and a server certificate for 127.0.0.1 and
    localhost that it signed, made with ``cryptography``, else with the ``openssl`` command
    (``cryptography`` is no declared dependency); skipped when neither is there."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        from cryptography import x509
    except ImportError:
        return _certificates_openssl(directory)
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("joulecast test CA"))
        .issuer_name(name("joulecast test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _certificates_openssl(directory: Path) -> tuple[Path, Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("neither cryptography nor openssl is available to make a certificate")
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for args in (
        [
            "req",
            "-x509",
            *new_key,
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "1",
            "-subj",
            "/CN=joulecast test CA",
        ],
        [
            "req",
            *new_key,
            "-keyout",
            key,
            "-out",
            csr,
            "-subj",
            "/CN=localhost",
        ],
        [
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "1",
            "-extfile",
            ext,
        ],
    ):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)
    return ca, cert, key


def test_tls_with_a_generated_certificate(start_server, family_graphs, tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    other_ca, _, _ = _certificates(tmp_path / "other")
    served = start_server(tls_cert=cert, tls_key=key)
    graph = family_graphs["mlp"]
    address = f"localhost:{served.port}"

    with EstimatorClient(address, root_cert=ca.read_bytes(), token=TOKEN, timeout_s=30) as client:
        result = client.predict(graph, batch_size=8, samples=100, epochs=1)
        assert result.family == "mlp"
        assert client.list_predictors().default_hardware == "cpu-test"

    credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{served.port}", credentials) as channel:
        reply = pb_grpc.EnergyEstimatorStub(channel).PredictEnergy(
            pb.PredictEnergyRequest(onnx_model=graph, batch_size=8, samples=100, epochs=1),
            timeout=30,
        )
        assert reply.profile.family == "mlp"

    # A client that does not trust the CA, or that speaks plaintext, gets nowhere.
    stranger = EstimatorClient(address, root_cert=other_ca.read_bytes(), timeout_s=5)
    with stranger, pytest.raises(RemoteError):
        stranger.predict(graph, batch_size=8, samples=100, epochs=1)
    with grpc.insecure_channel(address) as plain:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.EnergyEstimatorStub(plain).PredictEnergy(
                pb.PredictEnergyRequest(onnx_model=graph, batch_size=8, samples=100, epochs=1),
                timeout=5,
            )
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
