"""The token that guards state-changing RPCs (AddMeasurements, Retrain).

Clients send metadata ``authorization: Bearer <token>`` (:mod:`rpc.auth`). The comparison takes constant time
(:func:`hmac.compare_digest`) and the token never appears in a message or a log line.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from joulecast.errors import Unauthenticated
from rpc.auth import METADATA_KEY, SCHEME


class TokenCheck:
    """Checks call metadata against the server's token; with no token, refuses every call."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    def __repr__(self) -> str:
        return f"TokenCheck(configured={self._token is not None})"

    @property
    def configured(self) -> bool:
        return self._token is not None

    def require(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
        """Raise :class:`Unauthenticated` unless ``metadata`` carries the right bearer token."""
        if self._token is None:
            raise Unauthenticated(
                "this server has no token configured (--token-file or JOULECAST_TOKEN), "
                "so it refuses state-changing calls"
            )
        values = [v for k, v in (metadata or ()) if k.lower() == METADATA_KEY]
        if not values:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        value = values[0]
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "replace")
        if not raw.startswith(SCHEME.encode()):
            raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
        if not hmac.compare_digest(raw[len(SCHEME) :].strip(), self._token):
            raise Unauthenticated("invalid token")
