"""core.redisconn.ThreadConnection: one connection per thread and process, made again when it breaks."""

import threading

import pytest

from core import redisconn
from core.redisconn import ThreadConnection

pytestmark = pytest.mark.integration

SCRIPT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.fixture
def client(redis_broker_url):
    import redis

    client = redis.Redis.from_url(redis_broker_url)
    yield client
    client.delete("crm:test:redisconn")


def test_a_command_is_answered_on_the_threads_own_connection(client):
    fast = ThreadConnection(client)
    ids = {}

    def ask(name):
        ids[name] = (fast.command("CLIENT", "ID"), fast.command("CLIENT", "ID"))

    threads = [threading.Thread(target=ask, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert fast.command("RPUSH", "crm:test:redisconn", "x") == 1
    assert ids["a"][0] == ids["a"][1] and ids["b"][0] == ids["b"][1]  # kept between commands
    assert ids["a"][0] != ids["b"][0]  # one per thread


def test_a_connection_killed_by_the_server_is_made_again_and_the_command_answered(client):
    fast = ThreadConnection(client)
    first = fast.command("CLIENT", "ID")
    assert client.client_kill_filter(_id=first) == 1

    assert fast.command("RPUSH", "crm:test:redisconn", "x") == 1
    assert fast.command("CLIENT", "ID") != first
    assert client.lrange("crm:test:redisconn", 0, -1) == [b"x"]


def test_a_child_process_never_uses_its_parents_connection(client, monkeypatch):
    fast = ThreadConnection(client)
    parents = fast.command("CLIENT", "ID")
    monkeypatch.setattr(redisconn.os, "getpid", lambda: -1)  # as after a fork

    assert fast.command("CLIENT", "ID") != parents


def test_a_script_redis_has_forgotten_is_sent_whole_and_known_again(client):
    fast = ThreadConnection(client)
    script = client.register_script(SCRIPT)
    assert fast.script(script, keys=["crm:test:redisconn"], args=[2]) == 2

    client.script_flush()

    assert fast.script(script, keys=["crm:test:redisconn"], args=[3]) == 5
    assert client.script_exists(script.sha) == [True]
