"""The serverset member the fleet registration writes is what Prometheus' serverset discovery parses
(Finagle's format: serviceEndpoint host/port, status ALIVE); see the e2e test for the real discovery."""

from __future__ import annotations

import json
import socket

from gpuwarden.fleet.registration import serverset_member


def test_the_member_names_the_agents_host_and_port() -> None:
    member = json.loads(serverset_member("http://10.0.0.7:9837"))
    assert member["serviceEndpoint"] == {"host": "10.0.0.7", "port": 9837}
    assert member["status"] == "ALIVE"
    assert member["additionalEndpoints"] == {"http": {"host": "10.0.0.7", "port": 9837}}


def test_a_wildcard_listen_address_is_advertised_as_the_hosts_name() -> None:
    for url in ("http://0.0.0.0:9837", "https://[::]:9837"):
        assert json.loads(serverset_member(url))["serviceEndpoint"]["host"] == socket.getfqdn()


def test_an_ipv6_address_loses_its_brackets() -> None:
    member = json.loads(serverset_member("https://[fd00::7]:9837"))
    assert member["serviceEndpoint"] == {"host": "fd00::7", "port": 9837}
    assert "https" in member["additionalEndpoints"]
