"""How a state-changing call (AddMeasurements, Retrain, DeleteMeasurements) carries its token.

Clients send metadata ``authorization: Bearer <token>``; the server checks it with
:class:`server.auth.TokenCheck`. Both read the key and the scheme from here.
"""

from __future__ import annotations

import os
from pathlib import Path

from joulecast.errors import InvalidArgument

METADATA_KEY = "authorization"
SCHEME = "Bearer "
TOKEN_ENV = "JOULECAST_TOKEN"
"""The environment variable a token is read from when no token file is given."""


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that carries ``token`` (for clients)."""
    return ((METADATA_KEY, SCHEME + token),)


def read_token(
    token_file: str | os.PathLike[str] | None, env: dict[str, str] | None = None
) -> str | None:
    """The token from ``token_file`` (surrounding whitespace stripped), else from the
    ``JOULECAST_TOKEN`` environment variable, else ``None``."""
    if token_file is not None:
        path = Path(token_file)
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise InvalidArgument(f"cannot read token file {path}: {exc.strerror}") from exc
        if not token:
            raise InvalidArgument(f"token file {path} is empty")
        return token
    env = os.environ if env is None else env
    token = env.get(TOKEN_ENV, "").strip()
    return token or None
