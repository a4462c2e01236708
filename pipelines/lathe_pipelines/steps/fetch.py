"""What a Dataset source may reach, and fetching an http(s) source within those rules.

A Dataset's author picks the URL and the ingest run fetches it from inside the cluster, so
without rules a Dataset could read the cloud's metadata service, probe internal services
or exhaust the run's memory. The rules:

- every address the host name resolves to must be public: one private, loopback,
  link-local, multicast, reserved or unspecified address (or an IPv4-mapped, 6to4 or NAT64
  form of one) refuses the source before any connection; the connection goes to the vetted
  address (no second lookup to rebind), with the URL's host as Host header and TLS name;
- redirects are followed by hand, at most ``MAX_REDIRECTS``, each target vetted the same
  way, never from https to http;
- the body is read in chunks up to a byte cap, within a wall-clock deadline across
  connecting and reading;
- a connection that fails says only that the URL could not be fetched (refused, timed out
  or reset alike), so a Dataset cannot be used as a port scanner; an HTTP status, where a
  server answered, is reported as before;
- local paths and ``file://`` are read only where ``LATHE_SOURCES_ALLOW_LOCAL`` is true.

Local mode's ingest processes (``LocalExecutor``) set ``LATHE_SOURCES_ALLOW_PRIVATE`` and
``LATHE_SOURCES_ALLOW_LOCAL``; ingest Jobs do not.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import IngestError, SourceAccessDenied, SourceNotFound, SourceUnavailable

ALLOW_PRIVATE = "LATHE_SOURCES_ALLOW_PRIVATE"
ALLOW_LOCAL = "LATHE_SOURCES_ALLOW_LOCAL"
MAX_BYTES = "LATHE_SOURCES_MAX_BYTES"
DEADLINE = "LATHE_SOURCES_DEADLINE_SECONDS"
DENIED = "LATHE_SOURCES_DENIED_CIDRS"  # the cluster's pod and Service CIDRs: refused even where addresses are global

CEILING_BYTES = 2 << 30  # the body is held in memory: no setting goes above this
DEFAULT_DEADLINE = 300.0
MAX_REDIRECTS = 5
CHUNK = 1 << 20
REDIRECTS = (301, 302, 303, 307, 308)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class SourceRefused(IngestError):
    """The source is outside what this ingest run may read: an address, a scheme, a redirect."""

    reason = "SourceRefused"


class SourceTooLarge(IngestError):
    reason = "SourceTooLarge"


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not value > 0:
        raise IngestError(f"{name}={text!r} is not a positive number")
    return value


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False
    allow_local: bool = False
    max_bytes: int = CEILING_BYTES
    deadline: float = DEFAULT_DEADLINE
    denied: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Policy:
        environ = os.environ if environ is None else environ
        return cls(
            allow_private=_flag(environ, ALLOW_PRIVATE),
            allow_local=_flag(environ, ALLOW_LOCAL),
            max_bytes=min(int(_number(environ, MAX_BYTES, CEILING_BYTES)), CEILING_BYTES),
            deadline=_number(environ, DEADLINE, DEFAULT_DEADLINE),
            denied=networks(environ.get(DENIED, "")),
        )

    def refuses(self, address: str) -> bool:
        """Whether a source may not connect to ``address``: inside a denied network (the cluster's own, IPv6
        global unicast included), or not public where private addresses are not allowed."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return True
        if any(ip in network for network in self.denied if network.version == ip.version):
            return True
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if mapped is not None and any(mapped in n for n in self.denied if n.version == 4):
            return True
        return not self.allow_private and refused(address)


def networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated CIDRs (``10.96.0.0/12,fd00:10:96::/112``); a malformed one stops the run, never ignored."""
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())
    except ValueError as error:
        raise IngestError(f"{DENIED}={text!r}: {error}") from error


def _not_public(ip: IPAddress) -> bool:
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def refused(address: str) -> bool:
    """Whether a source may not connect to this address (IPv4 forms inside IPv6 judged as IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0: the scope is no excuse
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _not_public(ip.ipv4_mapped)
        if ip in NAT64:
            return _not_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and _not_public(ip.sixtofour):
            return True
        if ip.teredo is not None:
            return True
    return _not_public(ip)


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (tests replace this)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def connect(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to an address already vetted (tests replace this)."""
    return socket.create_connection((address, port), timeout=timeout)


def tls_context() -> ssl.SSLContext:
    """Certificates checked against the system's authorities and the URL's host (tests replace this)."""
    return ssl.create_default_context()


def local_allowed(uri: str, policy: Policy | None = None) -> None:
    """Raise SourceRefused unless local paths and file:// may be read here."""
    if not (policy or Policy.from_env()).allow_local:
        raise SourceRefused(f"{uri}: local paths and file:// sources are read in local mode only ({ALLOW_LOCAL})")


class _Deadline:
    """The wall clock across connecting and reading; at the end it shuts the sockets it was given,
    so no read (of the status line and headers included) outlives it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.shut = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True
        self.timer.start()

    @property
    def expired(self) -> bool:
        return self.shut or time.monotonic() >= self.end

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0 or self.shut:
            raise TimeoutError("deadline")
        return left

    def track(self, sock: socket.socket) -> socket.socket:
        with self.lock:
            if any(sock is known for known in self.sockets):
                return sock
            self.sockets.append(sock)
            if self.shut:
                self._shut(sock)
        return sock

    def settimeout(self) -> None:
        left = self.remaining()
        for sock in self.sockets:
            if sock.fileno() != -1:  # a TCP socket TLS took over is detached
                sock.settimeout(left)

    def _expire(self) -> None:
        with self.lock:
            self.shut = True
            for sock in self.sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.timer.cancel()
        with self.lock:
            for sock in self.sockets:
                sock.close()
            self.sockets.clear()


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the vetted addresses in turn; the URL's host stays the Host header."""

    def __init__(self, host: str, port: int, addresses: list[str], deadline: _Deadline) -> None:
        super().__init__(host, port, timeout=deadline.remaining())
        self._create_connection = self._pinned  # type: ignore[method-assign]
        self.addresses, self.deadline = addresses, deadline

    def _pinned(self, _where: object, _timeout: object = None, _source: object = None) -> socket.socket:
        error: OSError = OSError("no address")
        for address in self.addresses:
            try:
                return self.deadline.track(connect(address, self.port, self.deadline.remaining()))
            except OSError as failure:
                error = failure
        raise error


class _PinnedHTTPS(http.client.HTTPSConnection):
    """As ``_PinnedHTTP``, the URL's host also the TLS server name checked against the certificate."""

    def __init__(self, host: str, port: int, addresses: list[str], deadline: _Deadline) -> None:
        super().__init__(host, port, timeout=deadline.remaining(), context=tls_context())
        self._create_connection = self._pinned  # type: ignore[method-assign]
        self.addresses, self.deadline = addresses, deadline

    _pinned = _PinnedHTTP._pinned


def _vet(url: str, policy: Policy) -> tuple[urllib.parse.SplitResult, str, int, list[str]]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SourceRefused(f"{url}: only http and https URLs are fetched")
    try:
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise SourceRefused(f"{url}: {error}") from error
    if not host:
        raise SourceRefused(f"{url} has no host")
    try:
        host = host.encode("idna").decode("ascii")  # as it is looked up and sent
    except UnicodeError as error:
        raise SourceRefused(f"{url}: {host} is not a valid host name") from error
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as error:
        raise SourceUnavailable(f"{url} could not be fetched") from error
    if not addresses:
        raise SourceUnavailable(f"{url} could not be fetched")
    if any(policy.refuses(a) for a in addresses):
        raise SourceRefused(
            f"{url}: {host} resolves to a private, loopback, link-local, cluster ({DENIED}) or otherwise"
            f" non-public address, which sources may not reach ({ALLOW_PRIVATE} is for local mode)"
        )
    return parts, host, port, addresses


def _status(url: str, code: int) -> IngestError:
    if code in (404, 410):
        return SourceNotFound(f"{url} answered {code}")
    if code in (401, 403):
        return SourceAccessDenied(f"{url} answered {code}")
    return SourceUnavailable(f"{url} answered {code}")


def _body(url: str, response: http.client.HTTPResponse, policy: Policy, deadline: _Deadline) -> bytes:
    length = (response.getheader("Content-Length") or "").strip()
    if length.isdigit() and int(length) > policy.max_bytes:
        raise SourceTooLarge(f"{url} is {int(length)} bytes, over the {policy.max_bytes} byte limit ({MAX_BYTES})")
    buffer = io.BytesIO()
    while True:
        deadline.settimeout()
        chunk = response.read1(CHUNK)
        if not chunk:
            break
        buffer.write(chunk)
        if buffer.tell() > policy.max_bytes:
            raise SourceTooLarge(f"{url} is over the {policy.max_bytes} byte limit ({MAX_BYTES})")
    deadline.remaining()  # an end of data the deadline caused is no end
    if response.length:
        raise http.client.IncompleteRead(b"", response.length)
    return buffer.getvalue()


def fetch(url: str, policy: Policy | None = None) -> bytes:
    """The body of an http(s) URL under ``policy`` (by default from the environment)."""
    policy = policy or Policy.from_env()
    deadline = _Deadline(policy.deadline)
    answered = False
    try:
        for _ in range(MAX_REDIRECTS + 1):
            parts, host, port, addresses = _vet(url, policy)
            kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
            connection = kind(host, port, addresses, deadline)
            path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            answered = False
            connection.request("GET", path, headers={"User-Agent": "lathe-ingest", "Accept-Encoding": "identity"})
            if connection.sock is not None:
                deadline.track(connection.sock)  # over TLS: the TLS socket, not the TCP one it took over
            deadline.settimeout()
            response = connection.getresponse()
            answered = True
            if response.status in REDIRECTS:
                location = response.getheader("Location")
                connection.close()
                if not location:
                    raise SourceUnavailable(f"{url} answered {response.status} without a Location")
                target = urllib.parse.urljoin(url, location.strip())
                if parts.scheme == "https" and urllib.parse.urlsplit(target).scheme != "https":
                    raise SourceRefused(f"{url} redirects from https to {target.split(':', 1)[0]}, which is refused")
                url = target
                continue
            if not 200 <= response.status < 300:
                connection.close()
                raise _status(url, response.status)
            try:
                return _body(url, response, policy, deadline)
            finally:
                connection.close()
        raise SourceRefused(f"{url}: more than {MAX_REDIRECTS} redirects")
    except IngestError:
        raise
    except (OSError, http.client.HTTPException) as error:
        if answered and deadline.expired:
            raise SourceUnavailable(f"{url} did not arrive within {policy.deadline:g} s ({DEADLINE})") from error
        raise SourceUnavailable(f"{url} could not be fetched") from error
    finally:
        deadline.close()
