"""The one exception root of joulecast.

Every package raises subclasses of :class:`JoulecastError`; the CLI prints their message on one
line and the gRPC server maps them to status codes in one place (``server/errors.py``).
"""


class JoulecastError(Exception):
    """Root of every error joulecast raises on purpose."""


class InvalidArgument(JoulecastError):
    """A caller gave a value that cannot be used (bad option, malformed input)."""


class ResourceLimit(JoulecastError):
    """An input exceeds a size or count limit."""


class NotFound(JoulecastError):
    """Something named does not exist (a plan, a hardware, a predictor version)."""


class FailedPrecondition(JoulecastError):
    """The system is not in a state that allows the operation (e.g. no predictor yet)."""


class Unauthenticated(JoulecastError):
    """A state-changing operation lacks a valid token."""


class ExportError(InvalidArgument):
    """A ``torch.nn.Module`` could not be exported to an ONNX graph (the message names the
    first operator torch's exporter does not support, where torch says which)."""


class InternalError(JoulecastError):
    """A bug: joulecast failed in a way it did not foresee (a server answers INTERNAL)."""


class Cancelled(JoulecastError):
    """The caller went away (cancelled, disconnected, or its deadline passed): its work was
    stopped and nobody waits for the answer."""
