"""Fixtures for fault-injection tests: private servers, the simulator, an app stack."""
from __future__ import annotations

import pytest

from sandbox.testing import SandboxServer
from tests.support.servers import PrivatePostgres, PrivateRedis

from .harness import Stack, record_queries


@pytest.fixture
def private_pg():
    """A PostgreSQL of this test's own, free to restart or cut off."""
    pg = PrivatePostgres().start()
    yield pg
    pg.close()


@pytest.fixture
def private_redis():
    """A Redis of this test's own, free to restart."""
    server = PrivateRedis().start()
    yield server
    server.close()


@pytest.fixture
def sandbox_server():
    """Factory: the simulator in a thread, with every served page recorded."""
    servers = []

    def make(**config):
        server = SandboxServer(companies=1, **config).start()
        server.recorder = record_queries(server)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def make_stack(private_pg, private_redis):
    """Factory: a database + Huey namespace on the private servers for a simulator URL."""
    stacks = []

    def make(sim_url: str, **extra_env: str) -> Stack:
        stack = Stack(private_pg, private_redis.url, sim_url, extra_env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()
