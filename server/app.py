"""Start and stop the gRPC server: the EnergyEstimator service, health and reflection.

``serve(settings)`` returns a started server and the port it listens on (``port=0`` in the
settings picks a free one). :meth:`RunningServer.shutdown` is what SIGTERM triggers: health
turns NOT_SERVING first, so that load balancers stop sending calls, then in-flight calls get
``grace_s`` seconds to finish.
"""

from __future__ import annotations

import logging
import resource
import threading
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from estimator.artifacts import remove_stale_temporaries
from estimator.service import PredictorRegistry
from joulecast.errors import InvalidArgument
from joulecast.graph import GraphLimits
from rpc.generated import estimator_pb2 as pb
from server import wire
from server.auth import TokenCheck
from server.core import EstimatorCore, FitFn, Registry
from server.profiling import ProfilePool
from server.retrain_child import FitInChild
from server.row_budget import RowBudget
from server.servicer import CallGate, EnergyEstimatorServicer
from server.settings import ServerSettings

logger = logging.getLogger(__name__)

LAYER_SUM_MODULES = ("estimator.layerwise.model",)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EnergyEstimator"].full_name
"""``joulecast.v1.EnergyEstimator``"""


class RunningServer:
    """A started server; ``port`` is the one it listens on."""

    def __init__(
        self,
        server: grpc.Server,
        health_servicer: health.HealthServicer,
        port: int,
        grace_s: float,
        pool: ProfilePool | None = None,
    ) -> None:
        self.grpc_server = server
        self.pool = pool
        self.health = health_servicer
        self.port = port
        self._grace_s = grace_s
        self._stopped = threading.Event()

    def shutdown(self, grace_s: float | None = None) -> threading.Event:
        """Health NOT_SERVING, then a graceful stop; returns an event set once stopped."""
        if not self._stopped.is_set():
            self._stopped.set()
            logger.info("shutting down: health NOT_SERVING, then stop")
            self.health.enter_graceful_shutdown()
        stopped = self.grpc_server.stop(self._grace_s if grace_s is None else grace_s)
        if self.pool is not None:
            pool = self.pool
            threading.Thread(
                target=lambda: (stopped.wait(), pool.close()), name="pool-close", daemon=True
            ).start()
        return stopped

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops; True when it did within ``timeout``."""
        return self.grpc_server.wait_for_termination(timeout)


def default_registry(artifacts_dir: Path) -> Registry:
    remove_stale_temporaries(artifacts_dir)
    return PredictorRegistry(artifacts_dir)


def serve(
    settings: ServerSettings,
    *,
    registry: Registry | None = None,
    fit: FitFn | None = None,
) -> tuple[RunningServer, int]:
    """Build and start the server described by ``settings``.

    ``registry`` defaults to ``PredictorRegistry(settings.artifacts_dir)`` and ``fit`` to
    ``estimator.publish.fit_and_publish``.
    """
    raise_fd_limit()
    if registry is None:
        registry = default_registry(settings.artifacts_dir)
    pool = _profile_pool(settings, registry)
    core = EstimatorCore(
        registry,
        artifacts_dir=settings.artifacts_dir,
        db_path=settings.db_path,
        graph_limits=GraphLimits(max_bytes=settings.max_graph_bytes),
        max_row_graph_bytes=settings.max_row_graph_bytes,
        max_rows_per_call=settings.max_rows_per_call,
        row_budget=RowBudget(settings.max_row_field_bytes, settings.max_call_bytes),
        profile_cache_size=settings.profile_cache_size,
        answer_cache_size=settings.answer_cache_size,
        fit=fit
        if fit is not None
        else FitInChild(settings.retrain_deadline_s, settings.retrain_memory_bytes),
        pool=pool,
    )
    server = _grpc_server(settings)
    servicer = EnergyEstimatorServicer(
        core,
        TokenCheck(settings.token),
        settings.max_graph_bytes,
        gate=CallGate(
            max_calls=settings.calls_limit,
            max_streams=settings.streams_limit,
            idle_s=settings.stream_idle_s,
            total_s=settings.stream_total_s,
            min_rate_bytes_s=settings.stream_min_rate_bytes_s,
            rate_grace_s=settings.stream_rate_grace_s,
            max_streams_per_host=settings.max_streams_per_host,
            max_calls_per_host=settings.max_calls_per_host,
        ),
    )
    wire.add_servicer(servicer, server)

    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )

    port = _listen(server, settings)
    if pool is not None and not pool.wait_ready(settings.profile_start_timeout_s):
        logger.warning("not every profiling worker started yet; serving with fewer")
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    logger.info("serving %s on %s:%d (%s)", SERVICE_NAME, settings.host, port, settings)
    return RunningServer(server, health_servicer, port, settings.grace_s, pool), port


def raise_fd_limit() -> None:
    """Raise the soft open-file limit to the hard one: each connection costs a descriptor."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # pragma: no cover - a locked-down host
        logger.warning("open-file limit left as it is: %s", exc)


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from exc


def _profile_pool(settings: ServerSettings, registry: Registry) -> ProfilePool | None:
    """The worker processes that profile uploads (None: profile in the calling thread)."""
    if settings.profile_workers == 0:
        return None
    uses_layer_sum = getattr(registry, "uses_layer_sum", None)
    return ProfilePool(
        GraphLimits(max_bytes=settings.max_graph_bytes),
        workers=settings.profile_workers,
        deadline_s=settings.profile_deadline_s,
        layer_deadline_s=settings.layer_deadline_s,
        memory_bytes=settings.profile_memory_bytes,
        # xgboost and the layer-sum model's code, imported when a worker starts rather
        # than by the first request that needs them (a second of CPU, behind a queue)
        preload=LAYER_SUM_MODULES if uses_layer_sum is not None and uses_layer_sum() else (),
    )


def _grpc_server(settings: ServerSettings) -> grpc.Server:
    """A gRPC server bounded as ``settings`` says (message size, connections, threads)."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
        ("grpc.max_allowed_incoming_connections", settings.max_connections),
        ("grpc.max_connection_idle_ms", 120_000),
        ("grpc.max_concurrent_streams", 64),
    ]
    return grpc.server(
        futures.ThreadPoolExecutor(
            max_workers=settings.max_workers, thread_name_prefix="joulecast-rpc"
        ),
        options=options,
        maximum_concurrent_rpcs=settings.max_workers * 8,
    )


def _listen(server: grpc.Server, settings: ServerSettings) -> int:
    """Bind ``settings.address`` (with TLS when a certificate and key are given); the port."""
    try:
        if settings.tls_cert is not None and settings.tls_key is not None:
            credentials = grpc.ssl_server_credentials(
                [(_read(settings.tls_key), _read(settings.tls_cert))]
            )
            port = server.add_secure_port(settings.address, credentials)
        else:
            port = server.add_insecure_port(settings.address)
    except RuntimeError as exc:
        raise InvalidArgument(f"cannot listen on {settings.address}: {exc}") from exc
    if not port:
        raise InvalidArgument(f"cannot listen on {settings.address}")
    return port
