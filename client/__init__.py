"""The client of the gRPC service: ``remote`` (:class:`~client.remote.EstimatorClient`),
``convert`` (domain <-> protobuf, the only place on this side where protobuf is built or read),
``results`` (the records a call returns), ``sweep`` (one answer per batch size and power
limit), ``format`` (a prediction as a table) and ``cli`` (the commands that ask a running
server). It stands on :mod:`rpc` and :mod:`joulecast` and never imports :mod:`server`.
"""
