"""HTTPS and WSS through the device's trust store, against the real server behind a real TLS
proxy: a throwaway CA made with the `openssl` CLI, a certificate for 127.0.0.1, and a Python
proxy (asyncio + ssl) that ends TLS on 127.0.0.1 and passes the bytes on to the test server, so
GraphQL over HTTP and the event stream's WebSocket both go through it.

On Linux the SDK's verifier (rustls-platform-verifier) reads the system's roots as
rustls-native-certs does: `SSL_CERT_FILE`, when set, replaces the system bundle. The roots are
read when a `Client` is created, so each test sets the variable around the creation of its
client, and one process can hold clients that trust different authorities.
"""

import asyncio
import contextlib
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import namedtuple

import pytest

from test_sdk import (
    ASSIGNMENT_TIMEOUT,
    CONNECT_TIMEOUT,
    RecordingListener,
    new_client,
    start_customer_chat,
    wait_connected,
    wait_for,
)

# Elsewhere the platform's own verifier (the Security framework on macOS) ignores SSL_CERT_FILE.
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="adds a root through SSL_CERT_FILE, which only Linux's verifier reads",
)

# A certificate and its key, and the authority that signed it.
Issued = namedtuple("Issued", "cert key ca")


def _openssl(*args, cwd):
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{done.stderr}")


def _authority_and_server_cert(directory, name):
    """A new CA called `name` and a server certificate it signed for 127.0.0.1."""
    directory.mkdir()
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    return Issued(directory / "server.pem", directory / "server.key", directory / "ca.pem")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """Two unrelated authorities, each with a certificate for 127.0.0.1: the device is told to
    trust `trusted.ca`; nothing ever trusts `rogue.ca`."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests need the openssl command (Debian's openssl)", pytrace=False)
    directory = tmp_path_factory.mktemp("pki")
    return namedtuple("Certificates", "trusted rogue")(
        _authority_and_server_cert(directory / "trusted", "Switchboard test CA"),
        _authority_and_server_cert(directory / "rogue", "Nobody's CA"),
    )


class TlsProxy:
    """Ends TLS on 127.0.0.1 with `issued`'s certificate and passes the bytes both ways to
    `upstream` (host, port), on an event loop of its own thread. `handshakes` counts the
    connections whose TLS handshake completed, `refused` those the client broke off."""

    def __init__(self, issued, upstream):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(issued.cert, issued.key)
        self.upstream = upstream
        self.handshakes = 0
        self.refused = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tls-proxy", daemon=True)

    def __enter__(self):
        self.thread.start()
        # Plain TCP, then TLS by hand: a handshake the client breaks off is counted here
        # rather than only logged by asyncio.
        start = asyncio.start_server(self._forward, "127.0.0.1", 0)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        return self

    async def _forward(self, reader, writer):
        try:
            await writer.start_tls(self.context)
        except OSError:  # ssl.SSLError, ConnectionResetError, ...
            self.refused += 1
            writer.close()
            return
        self.handshakes += 1
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def pipe(source, sink):
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def __exit__(self, *exc):
        async def stop():
            self.server.close()
            forwarding = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in forwarding:
                task.cancel()
            await asyncio.gather(*forwarding, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def device_trusting(ca):
    """The machine's trust store is `ca` alone while the block runs (clients created inside
    keep it); the caller's environment comes back after."""
    saved = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    os.environ["SSL_CERT_FILE"] = str(ca)
    os.environ.pop("SSL_CERT_DIR", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def upstream(server):
    url = urllib.parse.urlsplit(server.base_url)
    return url.hostname, url.port


def eventually(condition, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s")
        time.sleep(0.05)


def untrusted_message(msg):
    return "certificate" in msg and "not trusted" in msg


def test_a_server_whose_authority_the_device_trusts_is_reached_over_https_and_wss(
    sdk, server, run, tmp_path, certificates
):
    with TlsProxy(certificates.trusted, upstream(server)) as proxy:
        with device_trusting(certificates.trusted.ca):
            client, _ = new_client(sdk, proxy.url, tmp_path / "agent")
        agent = run(client.login(server.email, server.password))
        assert agent.email == server.email
        https = proxy.handshakes
        assert https >= 1, "login did not go through the TLS proxy"

        listener = RecordingListener()
        handle = client.subscribe(listener)
        try:
            wait_connected(listener)
            _, chat = start_customer_chat(server, "Hello over TLS")
            wait_for(
                listener.events,
                lambda e: e.is_chat_assigned() and e.chat.id == chat["id"],
                ASSIGNMENT_TIMEOUT,
                f"AgentEvent.CHAT_ASSIGNED for chat {chat['id']} over wss",
            )
        finally:
            handle.cancel()
        # The WebSocket is a connection of its own, through the same proxy.
        assert proxy.handshakes > https, (https, proxy.handshakes)
        assert proxy.refused == 0


def test_a_certificate_from_an_authority_the_device_does_not_trust_is_refused_in_words(
    sdk, server, run, tmp_path, certificates
):
    data_dir = tmp_path / "agent"
    # A session and an event cursor from a plain connection, so that the TLS client's stream
    # opens its WebSocket straight away (with no cursor it would first ask over HTTP).
    plain, _ = new_client(sdk, server.base_url, data_dir)
    run(plain.login(server.email, server.password))
    listener = RecordingListener()
    handle = plain.subscribe(listener)
    try:
        wait_connected(listener)
    finally:
        handle.cancel()
    session = plain.session()

    with TlsProxy(certificates.rogue, upstream(server)) as proxy:
        with device_trusting(certificates.trusted.ca):
            client, store = new_client(sdk, proxy.url, tmp_path / "refused")
            streaming, _ = new_client(sdk, proxy.url, data_dir)

        with pytest.raises(sdk.SdkError.Network) as refused:
            run(client.login(server.email, server.password))
        assert untrusted_message(refused.value.msg), refused.value.msg
        assert store.snapshot() == ([], 0)

        streaming.restore(session)
        listener = RecordingListener()
        handle = streaming.subscribe(listener)
        try:
            state, seen = wait_for(
                listener.states,
                lambda s: s.is_waiting_for_network(),
                CONNECT_TIMEOUT,
                "ConnectionState.WAITING_FOR_NETWORK",
            )
        finally:
            handle.cancel()
        assert not any(s.is_connected() for s in seen), seen
        assert untrusted_message(state.reason), state.reason
        # The WebSocket's own words (an HTTP failure would read "network: …").
        assert state.reason.startswith("cannot connect securely to 127.0.0.1"), state.reason
        # Both the login's request and the WebSocket knocked, and neither got through.
        eventually(lambda: proxy.refused >= 2, f"two refused handshakes (saw {proxy.refused})")
        assert proxy.handshakes == 0


def test_the_trust_store_is_read_for_each_client(sdk, server, run, tmp_path, certificates):
    """Roots are not cached for the process: a client made while the device trusts another
    authority refuses the very server that a client made with the right one reaches."""
    with TlsProxy(certificates.trusted, upstream(server)) as proxy:
        with device_trusting(certificates.rogue.ca):
            wrong, _ = new_client(sdk, proxy.url, tmp_path / "wrong")
        with device_trusting(certificates.trusted.ca):
            right, _ = new_client(sdk, proxy.url, tmp_path / "right")

        with pytest.raises(sdk.SdkError.Network) as refused:
            run(wrong.login(server.email, server.password))
        assert untrusted_message(refused.value.msg), refused.value.msg
        assert run(right.login(server.email, server.password)).email == server.email
