"""What a Dataset source may reach: vetted addresses only, redirects by hand, a byte cap, a deadline.

Every server here listens on 127.0.0.1. Names resolve through a stub, ``socket.getaddrinfo``
answers IP literals only, and every connection is checked to go to a loopback address: a
"public" address in a test is routed to the loopback server, so no test sends traffic
anywhere else.
"""

from __future__ import annotations

import http.server
import ipaddress
import os
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lathe_core.runs import RunRequest
from lathe_core.settings import StoreSettings
from lathe_operator.backends.executors import LocalExecutor
from lathe_operator.reconcile.jobs import manifest
from lathe_pipelines.steps import fetch
from lathe_pipelines.steps.errors import IngestError, SourceNotFound, SourceUnavailable
from lathe_pipelines.steps.fetch import Policy, SourceRefused, SourceTooLarge
from lathe_pipelines.steps.read import read_source

PUBLIC = "93.184.215.14"  # judged public; connections to it are routed to the loopback server
DATA = b"a,b\n1,2\n3,4\n"
PRIVATE = Policy(allow_private=True)
VARIABLES = ("LATHE_SOURCES_ALLOW_PRIVATE", "LATHE_SOURCES_ALLOW_LOCAL")


@dataclass
class Net:
    """The resolver and connection stubs, and what went through them."""

    names: dict[str, list[str]] = field(default_factory=dict)
    route: dict[str, str] = field(default_factory=dict)  # pretend address -> loopback address
    connects: list[tuple[str, int]] = field(default_factory=list)  # fetch.connect calls
    sockets: list[Any] = field(default_factory=list)  # socket.connect calls, from anywhere


@pytest.fixture(autouse=True)
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    stubs = Net()
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    real_getaddrinfo, real_connect, real_socket_connect = socket.getaddrinfo, fetch.connect, socket.socket.connect

    def resolve(host: str, port: int) -> list[str]:
        return stubs.names.get(host, [host])

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        ipaddress.ip_address(host)  # a name would be a DNS query: ValueError
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(address: str, port: int, timeout: float) -> socket.socket:
        stubs.connects.append((address, port))
        return real_connect(stubs.route.get(address, address), port, timeout)

    def socket_connect(self: socket.socket, address: Any) -> None:
        stubs.sockets.append(address)
        assert ipaddress.ip_address(address[0]).is_loopback, f"a test tried to reach {address}"
        real_socket_connect(self, address)

    monkeypatch.setattr(fetch, "resolve", resolve)
    monkeypatch.setattr(fetch, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", socket_connect)
    return stubs


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.seen.append((self.path, self.headers.get("Host")))
        path, _, query = self.path.partition("?")
        route = getattr(self, "route_" + path.strip("/").split("/")[0].replace("-", "_"), None)
        try:
            if route is None:
                self.send_error(404)
            else:
                route(path, urllib.parse.parse_qs(query))
        except OSError:
            self.close_connection = True

    def reply(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_data(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(DATA)

    def route_host(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(str(self.headers.get("Host")).encode())

    def route_hops(self, path: str, query: dict[str, list[str]]) -> None:
        """/hops/N redirects N times, then serves the data."""
        left = int(path.rsplit("/", 1)[1])
        self.send_response(302 if left % 2 else 307)
        self.send_header("Location", f"/hops/{left - 1}" if left else "/data")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_to(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_response(301)
        self.send_header("Location", query["location"][0])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_long(self, path: str, query: dict[str, list[str]]) -> None:
        """Announces a body far over any cap; sends none of it."""
        self.send_response(200)
        self.send_header("Content-Length", str(10**12))
        self.end_headers()
        self.server.stop.wait(5)

    def route_chunked(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(1000):
            self.wfile.write(b"40\r\n" + b"x" * 64 + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def route_until_close(self, path: str, query: dict[str, list[str]]) -> None:
        """No length, not chunked: the body ends when the connection does."""
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"y" * 64_000)
        self.close_connection = True

    def route_trickle(self, path: str, query: dict[str, list[str]]) -> None:
        """A small body, one byte every 20 ms: 20 s in all."""
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):
            if self.server.stop.wait(0.02):
                return
            self.wfile.write(b"z")
            self.wfile.flush()

    def route_trickle_headers(self, path: str, query: dict[str, list[str]]) -> None:
        """The status line, then a header one byte every 20 ms, never ending."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(5000):
            if self.server.stop.wait(0.02):
                return
            self.wfile.write(b"s")
            self.wfile.flush()

    def route_silent(self, path: str, query: dict[str, list[str]]) -> None:
        self.server.stop.wait(5)
        self.close_connection = True

    def route_reset(self, path: str, query: dict[str, list[str]]) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def route_gone(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(b"", 410)

    def route_denied(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(b"", 403)

    def route_broken(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(b"", 500)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[str, str | None]] = []
        self.stop = threading.Event()
        self.names: list[str | None] = []  # TLS server names the clients sent
        if context is not None:
            context.sni_callback = lambda _sock, name, _ctx: self.names.append(name)  # type: ignore[assignment]
            self.socket = context.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(context: ssl.SSLContext | None = None) -> Server:
        started.append(Server(context))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def server(serve: Callable[..., Server]) -> Server:
    return serve()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Which addresses


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.251",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fd00::1",
        "fe80::1%eth0",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2001::1",  # Teredo
        "not an address",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert fetch.refused(address)


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808"],
)
def test_public_addresses_pass(address: str) -> None:
    assert not fetch.refused(address)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1", "fd00::", "::ffff:127.0.0.1", "fe80::1"]
)
def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(net: Net, address: str) -> None:
    net.names["data.example"] = [address]
    with pytest.raises(SourceRefused, match="data.example resolves to a private"):
        fetch.fetch("http://data.example/digits.csv", Policy())
    net.names["mixed.example"] = [PUBLIC, address]  # one private address among public ones is enough
    with pytest.raises(SourceRefused):
        fetch.fetch("https://mixed.example/digits.csv", Policy())
    assert net.connects == [] and net.sockets == []


def test_a_loopback_literal_is_refused_unless_private_addresses_are_allowed(net: Net, server: Server) -> None:
    with pytest.raises(SourceRefused):
        fetch.fetch(server.url("/data"), Policy())
    assert net.connects == [] and server.seen == []
    assert fetch.fetch(server.url("/data"), PRIVATE) == DATA
    assert net.connects == [("127.0.0.1", server.port)]


def test_the_environment_allows_private_addresses(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    with pytest.raises(SourceRefused):
        read_source(server.url("/data"), "csv")
    monkeypatch.setenv("LATHE_SOURCES_ALLOW_PRIVATE", "true")
    assert read_source(server.url("/data"), "csv").to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_the_vetted_address_is_used_and_the_host_is_kept(net: Net, server: Server) -> None:
    """No second lookup: the name is resolved once (by the stub) and the connection goes to that address."""
    net.names["data.example"] = [PUBLIC]
    net.route[PUBLIC] = "127.0.0.1"
    assert fetch.fetch(server.url("/host", "data.example"), Policy()) == f"data.example:{server.port}".encode()
    assert net.connects == [(PUBLIC, server.port)] and net.sockets == [("127.0.0.1", server.port)]


def test_https_sends_the_urls_host_as_server_name(
    net: Net, serve: Callable[..., Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=data.example"]
            + ["-addext", "subjectAltName=DNS:data.example", "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"no openssl to make a certificate: {error}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    secure, plain = serve(context), serve()
    monkeypatch.setattr(fetch, "tls_context", lambda: ssl.create_default_context(cafile=str(cert)))
    net.names["data.example"] = [PUBLIC]
    net.route[PUBLIC] = "127.0.0.1"
    url = secure.url("/host", "data.example", "https")
    assert fetch.fetch(url, Policy()) == f"data.example:{secure.port}".encode()
    assert secure.names == ["data.example"] and net.connects == [(PUBLIC, secure.port)]

    down = secure.url("/to?location=" + plain.url("/data", "data.example"), "data.example", "https")
    with pytest.raises(SourceRefused, match="from https to http"):
        fetch.fetch(down, Policy())
    assert plain.seen == []


# Redirects


def test_redirects_are_followed_by_hand_up_to_five(server: Server) -> None:
    assert fetch.fetch(server.url("/hops/4"), PRIVATE) == DATA
    assert [path for path, _ in server.seen] == ["/hops/4", "/hops/3", "/hops/2", "/hops/1", "/hops/0", "/data"]
    with pytest.raises(SourceRefused, match="more than 5 redirects"):
        fetch.fetch(server.url("/hops/5"), PRIVATE)


@pytest.mark.parametrize(
    "target", ["http://127.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:80/", "http://internal/"]
)
def test_a_redirect_to_a_private_address_is_refused(net: Net, server: Server, target: str) -> None:
    net.names["data.example"] = [PUBLIC]
    net.names["internal"] = ["10.0.0.5"]
    net.route[PUBLIC] = "127.0.0.1"
    url = server.url("/to?location=" + urllib.parse.quote(target, safe=""), "data.example")
    with pytest.raises(SourceRefused, match="resolves to a private"):
        fetch.fetch(url, Policy())
    assert net.connects == [(PUBLIC, server.port)]  # the first hop only


def test_a_redirect_to_another_scheme_is_refused(net: Net, server: Server) -> None:
    with pytest.raises(SourceRefused, match="only http and https"):
        fetch.fetch(server.url("/to?location=file:///etc/passwd"), PRIVATE)
    assert len(net.connects) == 1


# Size and time


def test_a_content_length_over_the_cap_is_refused_before_reading(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(SourceTooLarge, match="1000000000000 bytes, over the 100 byte limit"):
        fetch.fetch(server.url("/long"), Policy(allow_private=True, max_bytes=100))
    assert time.monotonic() - started < 2  # the server never sends the body it announced


@pytest.mark.parametrize("path", ["/chunked", "/until-close"])
def test_a_body_without_length_is_cut_at_the_cap(server: Server, path: str) -> None:
    with pytest.raises(SourceTooLarge, match="over the 10000 byte limit"):
        fetch.fetch(server.url(path), Policy(allow_private=True, max_bytes=10_000))
    assert len(fetch.fetch(server.url(path), Policy(allow_private=True, max_bytes=64_000))) == 64_000


def test_the_deadline_covers_a_trickling_body(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=r"did not arrive within 0.5 s"):
        fetch.fetch(server.url("/trickle"), Policy(allow_private=True, deadline=0.5))
    assert time.monotonic() - started < 2


def test_the_deadline_covers_trickling_headers(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="trickle-headers (could not be fetched|did not arrive within 0.5 s)"):
        fetch.fetch(server.url("/trickle-headers"), Policy(allow_private=True, deadline=0.5))
    assert time.monotonic() - started < 2


def test_settings_come_from_the_environment() -> None:
    policy = Policy.from_env({"LATHE_SOURCES_MAX_BYTES": "1000", "LATHE_SOURCES_DEADLINE_SECONDS": "12.5"})
    assert (policy.max_bytes, policy.deadline, policy.allow_private, policy.allow_local) == (1000, 12.5, False, False)
    assert Policy.from_env({"LATHE_SOURCES_MAX_BYTES": str(10**13)}).max_bytes == 2 << 30  # the ceiling
    assert Policy.from_env({}) == Policy(max_bytes=2 << 30, deadline=300)
    both = {"LATHE_SOURCES_ALLOW_PRIVATE": "True", "LATHE_SOURCES_ALLOW_LOCAL": "1"}
    assert Policy.from_env(both) == Policy(allow_private=True, allow_local=True)
    with pytest.raises(IngestError, match="LATHE_SOURCES_DEADLINE_SECONDS='soon' is not a positive number"):
        Policy.from_env({"LATHE_SOURCES_DEADLINE_SECONDS": "soon"})


# What failures say


def test_connection_failures_all_say_the_same(net: Net, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused, timed out, reset, silent, unresolvable: one message, so sources cannot map ports."""
    policy = Policy(allow_private=True, deadline=0.5)
    messages = set()
    url = f"http://127.0.0.1:{unused_port()}/data"
    for case in ("refused", "timeout", "reset", "silent", "unresolvable"):
        with monkeypatch.context() as patch:
            target = url
            if case == "timeout":
                patch.setattr(fetch, "connect", lambda *_: (_ for _ in ()).throw(TimeoutError("timed out")))
            elif case in ("reset", "silent"):
                target = server.url("/" + case)
            elif case == "unresolvable":
                patch.setattr(fetch, "resolve", lambda *_: (_ for _ in ()).throw(socket.gaierror(-2, "unknown")))
            with pytest.raises(SourceUnavailable) as caught:
                fetch.fetch(target, policy)
            messages.add(str(caught.value).replace(target, "<url>"))
    assert messages == {"<url> could not be fetched"}


def test_a_server_that_answers_is_quoted(server: Server) -> None:
    with pytest.raises(SourceNotFound, match="answered 404"):
        fetch.fetch(server.url("/nothing-here"), PRIVATE)
    with pytest.raises(SourceNotFound, match="answered 410"):
        fetch.fetch(server.url("/gone"), PRIVATE)
    with pytest.raises(IngestError, match="answered 403") as denied:
        fetch.fetch(server.url("/denied"), PRIVATE)
    assert denied.value.reason == "SourceAccessDenied"
    with pytest.raises(SourceUnavailable, match="answered 500"):
        fetch.fetch(server.url("/broken"), PRIVATE)


# Local files and who may read them


def test_local_paths_are_refused_unless_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d.csv").write_bytes(DATA)
    for uri in (str(tmp_path / "d.csv"), (tmp_path / "d.csv").as_uri(), str(tmp_path), "/etc/passwd"):
        with pytest.raises(SourceRefused, match="local mode only"):
            read_source(uri, "csv")
    assert len(read_source(str(tmp_path / "d.csv"), "csv", operator_file=True)) == 2  # a ConfigMap source
    monkeypatch.setenv("LATHE_SOURCES_ALLOW_LOCAL", "true")
    assert len(read_source((tmp_path / "d.csv").as_uri(), "csv")) == 2


class Processes:
    def __init__(self) -> None:
        self.runs: dict[str, Any] = {}
        self.env: dict[str, dict[str, str]] = {}

    def start(self, key: str, argv: list[str], env: dict[str, str]) -> bool:
        self.env[key] = env
        return True


def request(component: str, name: str = "") -> RunRequest:
    return RunRequest(namespace="team", name=name or f"{component}-1", component=component, args=(component,))


def test_local_ingest_runs_get_the_allowances_and_jobs_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    processes = Processes()
    executor = LocalExecutor(None, StoreSettings(), processes)  # type: ignore[arg-type]
    assert executor.start(request("ingest")) and executor.start(request("batch"))
    assert {k: processes.env["team/ingest-1"][k] for k in VARIABLES} == dict.fromkeys(VARIABLES, "true")
    assert not set(VARIABLES) & set(processes.env["team/batch-1"])
    job = manifest(request("ingest"), image="lathe", service_account="lathe-jobs", store=StoreSettings())
    names = {e["name"] for c in job["spec"]["template"]["spec"]["containers"] for e in c["env"]}
    assert not set(VARIABLES) & names
    monkeypatch.setenv("LATHE_SOURCES_ALLOW_PRIVATE", "false")  # the operator's own setting wins
    executor.start(request("ingest", "ingest-2"))
    assert processes.env["team/ingest-2"]["LATHE_SOURCES_ALLOW_PRIVATE"] == "false"
    assert os.environ["LATHE_SOURCES_ALLOW_PRIVATE"] == "false"
