"""Fixtures for the SDK's Python tests: the generated bindings and a real Switchboard server.

Environment:
  SWITCHBOARD_SDK_BINDINGS  directory holding switchboard_sdk.py and libswitchboard_sdk.so
                            (from `mobile-sdk/bindgen.sh python DIR`)
  SWITCHBOARD_SERVER_BIN    the server binary (target/debug/switchboard)

mobile-sdk/tests/python/run.sh sets both.
"""

import asyncio
import atexit
import base64
import importlib
import json
import os
import queue
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "correct-horse-battery-staple"
SERVER_START_TIMEOUT = 60.0
# Longest any single SDK coroutine may take before the test fails instead of hanging.
CALL_TIMEOUT = 30.0


def _required_env(name, what):
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: it must name {what}. "
            "Run mobile-sdk/tests/python/run.sh, which builds and sets everything.",
            pytrace=False,
        )
    return value


@pytest.fixture(scope="session")
def sdk():
    """The generated `switchboard_sdk` module."""
    bindings = _required_env(
        "SWITCHBOARD_SDK_BINDINGS",
        "the directory with the generated switchboard_sdk.py (mobile-sdk/bindgen.sh python DIR)",
    )
    module_path = os.path.join(bindings, "switchboard_sdk.py")
    if not os.path.isfile(module_path):
        pytest.fail(
            f"SWITCHBOARD_SDK_BINDINGS={bindings!r} has no switchboard_sdk.py",
            pytrace=False,
        )
    if bindings not in sys.path:
        sys.path.insert(0, bindings)
    module = importlib.import_module("switchboard_sdk")
    # The SDK's threads must stop before the interpreter finalizes (see `shutdown`'s docs).
    atexit.register(module.shutdown)
    return module


class Server:
    def __init__(self, base_url, graphql_url, widget_key, email, password, stderr_path):
        self.base_url = base_url
        self.graphql_url = graphql_url
        self.widget_key = widget_key
        self.email = email
        self.password = password
        self.stderr_path = stderr_path

    def graphql(self, query, variables=None, token=None):
        """POSTs one GraphQL operation; returns `data`, failing the test on any error."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            self.graphql_url,
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as err:
            answer = json.loads(err.read() or b"{}")
            if not answer.get("errors"):
                raise AssertionError(f"HTTP {err.code} from the server for {query!r}") from err
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors for {query!r}: {answer['errors']}")
        return answer["data"]


class VisitorPage:
    """A visitor's open page: the widget's WebSocket (graphql-transport-ws, RFC 6455 by hand,
    since the standard library has no client) subscribed to `visitorEvents`. While it is open
    the visitor is on the site."""

    QUERY = "subscription { visitorEvents { __typename at ... on GreetingReceived { greeting { id text } } } }"

    def __init__(self, graphql_url, token):
        url = urllib.parse.urlsplit(graphql_url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=15)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("the server closed the WebSocket handshake")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise AssertionError(f"no WebSocket upgrade: {head!r}")
        self.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        ack = self.next()
        if ack.get("type") != "connection_ack":
            raise AssertionError(f"no connection_ack: {ack}")
        self.send({"id": "visitor", "type": "subscribe", "payload": {"query": self.QUERY}})

    def _frame(self, opcode, payload):
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send(self, message):
        self._frame(0x1, json.dumps(message).encode())

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("the server closed the visitor's WebSocket")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def next(self):
        """The next graphql-transport-ws message, answering pings on the way."""
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            payload = self._read(length)
            if opcode == 0x9:
                self._frame(0xA, payload)
            elif opcode == 0x8:
                raise AssertionError(f"the server closed the visitor's WebSocket: {payload!r}")
            elif opcode == 0x1:
                message = json.loads(payload)
                if message.get("type") == "ping":
                    self.send({"type": "pong"})
                    continue
                return message

    def close(self):
        try:
            self._frame(0x8, struct.pack("!H", 1000))
        finally:
            self.sock.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A fresh server on an empty SQLite database, with a bootstrapped owner."""
    binary = _required_env(
        "SWITCHBOARD_SERVER_BIN", "the server binary (cargo build --bin switchboard)"
    )
    if not os.access(binary, os.X_OK):
        pytest.fail(f"SWITCHBOARD_SERVER_BIN={binary!r} is not an executable", pytrace=False)

    data_dir = tmp_path_factory.mktemp("server-data")
    stderr_path = data_dir / "server.stderr.log"
    env = dict(os.environ)
    for key in list(env):
        # Nothing from the caller's shell (DATABASE_URL, a JWT secret, ...) may leak in.
        if key.startswith("SWITCHBOARD_") or key == "DATABASE_URL":
            del env[key]
    env.update(
        SWITCHBOARD_DATA_DIR=str(data_dir),
        SWITCHBOARD_LISTEN="127.0.0.1:0",
        SWITCHBOARD_BOOTSTRAP_OWNER_EMAIL=OWNER_EMAIL,
        SWITCHBOARD_BOOTSTRAP_OWNER_PASSWORD=OWNER_PASSWORD,
        # The integration test's receiver listens on 127.0.0.1.
        SWITCHBOARD_ALLOW_PRIVATE_WEBHOOK_TARGETS="true",
        RUST_LOG=env.get("RUST_LOG", "info,sqlx=warn"),
    )
    stderr_file = open(stderr_path, "wb")
    process = subprocess.Popen(
        [binary],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        text=True,
    )

    lines = queue.Queue()

    def pump():
        # Keeps draining stdout for the server's whole life so it never blocks on a full pipe.
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="server-stdout", daemon=True).start()

    def stop():
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        stderr_file.close()

    seen = []
    widget_key = None
    listening = None
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    try:
        while listening is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"the server did not print its listening line within {SERVER_START_TIMEOUT:.0f} s"
                )
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                process.wait(timeout=10)
                raise AssertionError(
                    f"the server exited ({process.returncode}) before listening"
                )
            seen.append(line)
            key = re.match(r"\s*widget key:\s*(\S+)", line)
            if key:
                widget_key = key.group(1)
            address = re.search(r"Switchboard is listening on (http://\S+)", line)
            if address:
                listening = address.group(1)
        if widget_key is None:
            raise AssertionError("the server printed no widget key (was its database not empty?)")
    except AssertionError as err:
        stop()
        stdout = "".join(seen)
        stderr = stderr_path.read_text(errors="replace")
        pytest.fail(f"{err}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}", pytrace=False)

    graphql_url = listening
    base_url = graphql_url.rsplit("/graphql", 1)[0]
    server = Server(base_url, graphql_url, widget_key, OWNER_EMAIL, OWNER_PASSWORD, stderr_path)
    # The tests share this server and its one agent, and each leaves its chat open: lift the
    # agent's limit so every test's chat is assigned, whatever ran before it.
    try:
        token = server.graphql(
            "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }",
            {"e": OWNER_EMAIL, "p": OWNER_PASSWORD},
        )["login"]["accessToken"]
        server.graphql(
            "mutation { updateOrganizationSettings(input: {defaultChatLimit: 50}) { id } }",
            token=token,
        )
    except BaseException:
        stop()
        raise
    yield server
    stop()


@pytest.fixture
def visitor_page(server):
    """Opens a visitor's page (their widget's WebSocket) for a visitor token; closed after the
    test."""
    pages = []

    def open_page(token):
        page = VisitorPage(server.graphql_url, token)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.close()


@pytest.fixture
def run():
    """Runs an SDK coroutine to completion on this test's own event loop, bounded in time."""
    loop = asyncio.new_event_loop()

    def run(coroutine, timeout=CALL_TIMEOUT):
        return loop.run_until_complete(asyncio.wait_for(coroutine, timeout))

    yield run
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
