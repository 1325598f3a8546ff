"""The gRPC service of joulecast: send an ONNX graph, get predicted train and test energy.

Layout: ``settings`` (one settings object), ``core`` (transport-agnostic: profile, predict,
ingest rows, retrain), ``converters`` (protobuf <-> domain, the only place on this side where
protobuf is read or built), ``errors`` (domain errors -> status codes, in one place), ``auth``
(token check), ``servicer`` (gRPC adapter of the core), ``app`` (start and stop), ``cli``
(``joulecast serve``), ``spawn`` (``joulecast serve`` in a child process). The wire contract
it shares with its clients is :mod:`rpc`; the clients are :mod:`client`, which this package
never imports (nor they it).

Public objects: :class:`ServerSettings` and :func:`serve` (the latter imported lazily: the
``joulecast`` command imports ``server.cli`` for ``--help`` and should not pay for gRPC and the
estimator).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.settings import ServerSettings

if TYPE_CHECKING:
    from server.app import serve

__all__ = ["ServerSettings", "serve"]


def __getattr__(name: str) -> object:
    if name == "serve":
        # on first use: `joulecast --help` imports server.cli and must not pay for gRPC
        from server.app import serve

        return serve
    raise AttributeError(name)
