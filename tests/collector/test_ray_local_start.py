"""Starting the local Ray instance again when its raylet was too slow to register: Ray cannot
be made slow on demand, so a stand-in for the ``ray`` module plays the two starts; the real
instance is started by tests/collector/test_ray_executor.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from collector.executors.ray_executor import LOCAL_START_TRIES, _init_local

TIMEOUT = (
    "The current node timed out during startup. This could happen because some of the raylet "
    "failed to startup or the GCS has become overloaded."
)


def _ray(failures: list[str]) -> SimpleNamespace:
    calls: list[str] = []

    def init(**kwargs: object) -> dict[str, object]:
        calls.append("init")
        if failures:
            raise Exception(failures.pop(0))
        return {"address_info": {"node_ip_address": kwargs["_node_ip_address"]}}

    return SimpleNamespace(init=init, shutdown=lambda: calls.append("shutdown"), calls=calls)


def test_a_start_that_timed_out_is_tried_once_more() -> None:
    ray = _ray([TIMEOUT])
    context = _init_local(ray, {"node": 1}, {"num_cpus": 2})
    assert context["address_info"]["node_ip_address"] == "127.0.0.1"
    assert ray.calls == ["init", "shutdown", "init"]


def test_other_failures_and_a_second_timeout_reach_the_caller() -> None:
    ray = _ray([TIMEOUT] * LOCAL_START_TRIES)
    with pytest.raises(Exception, match="timed out during startup"):
        _init_local(ray, {}, {})
    assert ray.calls.count("init") == LOCAL_START_TRIES
    other = _ray(["Permission denied: /tmp/ray"])
    with pytest.raises(Exception, match="Permission denied"):
        _init_local(other, {}, {})
    assert other.calls == ["init"]
