"""One Redis connection per thread for the hot paths of the public endpoints.

A page view and a form submission each cost one to three Redis commands in the
request. Through redis-py's client each command also goes through its
connection pool, retry policy and hooks, which cost more CPU than the command;
`ThreadConnection` sends the command on a connection of its own per thread
(and per process: one inherited over a fork is never reused) and reads the
answer, nothing else. Everything else uses the client as usual.
"""

import os
import threading


class ThreadConnection:
    def __init__(self, client):
        import redis

        self.client = client
        self._local = threading.local()
        self._retry_on = (redis.ConnectionError, redis.TimeoutError)
        self._no_script = redis.exceptions.NoScriptError

    def _connection(self):
        held = getattr(self._local, "held", None)
        if held is None or held[0] != os.getpid():
            held = self._local.held = (os.getpid(), self.client.connection_pool.make_connection())
        return held[1]

    def command(self, *args):
        """Send one command and return its answer (a redis.ResponseError is raised as such).

        A broken connection (Redis restarted, a timeout) is made again and the command sent once more,
        so a command may run twice: callers send only what is safe to repeat (a push deduplicated by its
        id downstream, a rate-limit count).
        """
        connection = self._connection()
        try:
            connection.send_command(*args)
            return connection.read_response()
        except self._retry_on:
            connection.disconnect()
            connection.send_command(*args)
            return connection.read_response()

    def script(self, script, *, keys, args):
        """Run a script registered with the client (redis.commands.core.Script) by its SHA, loading it if Redis
        does not know it (after a restart or SCRIPT FLUSH)."""
        try:
            return self.command("EVALSHA", script.sha, len(keys), *keys, *args)
        except self._no_script:
            return self.command("EVAL", script.script, len(keys), *keys, *args)
