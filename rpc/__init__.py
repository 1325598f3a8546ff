"""The wire contract that the service and its clients share, and nothing else.

``generated`` (the stubs of ``proto/``, rebuilt by ``python -m rpc.gen_protos``), ``auth`` (how
a call carries its bearer token) and ``records`` (the domain records both sides of a call
speak). ``server`` and ``client`` each stand on this package and never on each other; protobuf
messages are built and read only in their converters (``server.converters``,
``client.convert``).
"""

DEFAULT_PORT = 50051
"""The port ``joulecast serve`` binds and clients ask by default."""
DEFAULT_SERVER = f"localhost:{DEFAULT_PORT}"
