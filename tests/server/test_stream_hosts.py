"""Stream slots are shared out by client host: one host never holds them all."""

from __future__ import annotations

import contextlib

import pytest

from joulecast.errors import ResourceLimit
from server.servicer import CallGate, peer_host


def test_peer_host_drops_the_port_only() -> None:
    assert peer_host("ipv4:10.0.0.5:5123") == "ipv4:10.0.0.5"
    assert peer_host("ipv6:[::1]:5123") == "ipv6:[::1]"
    assert peer_host("ipv6:[fe80::1%eth0]:40000") == "ipv6:[fe80::1%eth0]"
    assert peer_host("unix:/tmp/joulecast.sock") == "unix:/tmp/joulecast.sock"


def _gate(**kwargs) -> CallGate:
    return CallGate(max_calls=16, max_streams=4, idle_s=10.0, total_s=60.0, **kwargs)


def test_a_host_holds_all_slots_but_one_and_others_take_the_last() -> None:
    gate = _gate()
    assert gate.max_streams_per_host == 3
    with contextlib.ExitStack() as held:
        for _ in range(3):
            held.enter_context(gate.stream("predict", "ipv4:10.0.0.5"))
        with pytest.raises(ResourceLimit, match="this host already has 3 predict stream"):
            held.enter_context(gate.stream("predict", "ipv4:10.0.0.5"))
        # writes are counted apart, and so is another host
        with gate.stream("write", "ipv4:10.0.0.5"), gate.stream("predict", "ipv4:10.0.0.6"):
            pass
        held.enter_context(gate.stream("predict", "ipv4:10.0.0.6"))
        with pytest.raises(ResourceLimit, match="4 predict streams in progress"):
            held.enter_context(gate.stream("predict", "ipv4:10.0.0.7"))
    # every slot came back, refused attempts included
    with contextlib.ExitStack() as held:
        for _ in range(3):
            held.enter_context(gate.stream("predict", "ipv4:10.0.0.5"))
        held.enter_context(gate.stream("predict", "ipv4:10.0.0.6"))


def test_behind_a_proxy_the_share_can_be_every_slot() -> None:
    gate = _gate(max_streams_per_host=4)
    with contextlib.ExitStack() as held:
        for _ in range(4):
            held.enter_context(gate.stream("predict", "ipv4:10.0.0.1"))
