"""One settings object for the server process (built by ``joulecast serve`` or by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from joulecast.errors import InvalidArgument

DEFAULT_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """Where the server listens, what it serves from, and the bounds it enforces.

    ``port`` 0 picks a free port. ``token`` guards the state-changing RPCs (``None``: they are
    refused); it is kept out of ``repr`` so that it never reaches a log. Sizes in bytes.
    """

    artifacts_dir: Path = DEFAULT_ARTIFACTS
    db_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 50051
    token: str | None = field(default=None, repr=False)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_message_bytes: int = 16 * MiB
    """Largest single gRPC message accepted (a unary PredictEnergy graph, one stream chunk)."""
    max_graph_bytes: int = 64 * MiB
    """Largest graph accepted in total, streamed or not."""
    max_row_graph_bytes: int = 4 * MiB
    """Largest graph attached to one measurement row (weightless graphs weigh a few KB)."""
    max_rows_per_call: int = 20_000
    max_row_field_bytes: int = 16 * 1024
    """Longest text field (UTF-8 bytes) of a row sent to AddMeasurements."""
    max_call_bytes: int = 64 * MiB
    """Most bytes (row text, graphs) one AddMeasurements call may send."""
    max_workers: int = 40
    """Threads answering calls. EnergyEstimator calls may hold at most ``max_calls`` of them,
    so that health checks always find a thread."""
    max_calls: int | None = None
    """EnergyEstimator calls handled at once; more are answered RESOURCE_EXHAUSTED at once.
    ``None``: ``max_workers`` less 2 (two threads kept for health checks)."""
    max_streams: int | None = None
    """Streaming calls (PredictEnergyStream, AddMeasurements) handled at once. ``None``: 4, or
    fewer when ``calls_limit`` is small."""
    max_streams_per_host: int | None = None
    """Streaming calls of one kind that one client host may hold at once. ``None``: one less
    than ``streams_limit`` (at least 1), so that one machine never holds every slot. Behind a
    proxy every client is the proxy's host: raise it to ``streams_limit`` there."""
    max_calls_per_host: int | None = None
    """EnergyEstimator calls of any kind (streams included) that one client host may have in
    progress at once. ``None``: three quarters of ``calls_limit`` (at least 1), so that one
    machine asking many slow predictions leaves slots to the others. Behind a proxy every
    client is the proxy's host: raise it to ``calls_limit`` there."""
    stream_idle_s: float = 10.0
    """Longest wait for the next message of a stream before it is cut off."""
    stream_total_s: float = 300.0
    """Longest a whole request stream may take to arrive."""
    stream_min_rate_bytes_s: float = 256 * 1024
    """Bytes a request stream must bring per second the server waits for it, after
    ``stream_rate_grace_s``: a few slow clients cannot hold every stream slot."""
    stream_rate_grace_s: float = 5.0
    """Seconds of waiting for a stream's client before its rate counts."""
    max_connections: int = 512
    """Open client connections accepted at once (idle ones are closed after 2 minutes)."""
    profile_workers: int | None = None
    """Profiling processes; ``None``: one per core plus one, at least two; 0: profile in-process
    (no deadline, no memory cap: for tests of the core only)."""
    profile_deadline_s: float = 4.0
    """Longest one graph's profile may take; the worker is then killed and replaced."""
    layer_deadline_s: float = 8.0
    """Longest one layer-sum job may take (a graph's per-node records and their prediction,
    for a hardware served by layer-sum); the worker is then killed and replaced."""
    profile_memory_bytes: int = 1536 * MiB
    """Address-space cap of each profiling worker."""
    retrain_deadline_s: float = 1800.0
    """Longest one Retrain's fit may take; its process is then killed (the version serving
    stays)."""
    retrain_memory_bytes: int = 8192 * MiB
    """Address-space cap of a Retrain's fitting process (the shipped stores fit in under 2 GiB
    of address space and 250 MiB resident)."""
    profile_start_timeout_s: float = 60.0
    """How long start-up waits for the profiling workers before serving without them all."""
    grace_s: float = 5.0
    """Seconds in-flight calls get to finish on shutdown."""
    profile_cache_size: int = 256
    """Graph profiles kept, by content hash, so that a repeated graph is profiled once."""
    answer_cache_size: int = 1024
    """Predictions kept, by graph hash, run counts, hardware and utilisation, so that a repeated
    request skips the predictor (dropped when a new predictor version serves)."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InvalidArgument(f"port must be in [0, 65535], got {self.port}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidArgument("--tls-cert and --tls-key go together")
        if self.token is not None and not self.token:
            raise InvalidArgument("the token is empty")
        for name in (
            "max_message_bytes",
            "max_graph_bytes",
            "max_row_graph_bytes",
            "max_row_field_bytes",
            "max_call_bytes",
        ):
            if getattr(self, name) < 1024:
                raise InvalidArgument(f"{name} must be at least 1024 bytes")
        if self.max_workers < 2:
            raise InvalidArgument(f"max_workers must be at least 2, got {self.max_workers}")
        if not 1 <= self.streams_limit <= self.calls_limit < self.max_workers:
            raise InvalidArgument(
                "need 1 <= max_streams <= max_calls < max_workers (threads left for health), "
                f"got {self.streams_limit}, {self.calls_limit}, {self.max_workers}"
            )
        for name in ("max_streams_per_host", "max_calls_per_host"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InvalidArgument(f"{name} must be at least 1, got {getattr(self, name)}")
        if (
            min(self.profile_deadline_s, self.layer_deadline_s, self.retrain_deadline_s) <= 0
            or min(self.stream_idle_s, self.stream_total_s) <= 0
        ):
            raise InvalidArgument("deadlines must be positive")
        if not (self.stream_min_rate_bytes_s > 0 and self.stream_rate_grace_s >= 0):
            raise InvalidArgument("the stream rate must be positive, its grace >= 0")

    @property
    def calls_limit(self) -> int:
        if self.max_calls is not None:
            return self.max_calls
        return max(1, self.max_workers - 2)

    @property
    def streams_limit(self) -> int:
        if self.max_streams is not None:
            return self.max_streams
        return max(1, min(4, self.calls_limit // 2))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
