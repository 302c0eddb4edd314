"""URL policy: which URLs we may fetch at all (the first fetch layer, applied again after every redirect).

Only http(s). Hosts must resolve to public addresses: loopback, private, link-local, multicast, reserved,
shared (CGNAT) and cloud-metadata addresses are refused unless the config allow-lists them, so a feed
cannot make us reach into the network we run in (SSRF).

The check that matters happens where the socket is opened: `GuardedBackend` is the HTTP client's network
backend, so every TCP connection (first request, each redirect hop, robots.txt) resolves the name itself,
checks every address, and connects only to an address it checked. A name that resolves to a public
address for the check and to 169.254.169.254 a moment later (DNS rebinding) therefore cannot get through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import select
import socket
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore

# Metadata endpoints of the big clouds; refused even inside an allow-listed network unless listed exactly.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PolicyError(Exception):
    """The URL may not be fetched. `outcome` is `invalid_url` or `blocked`."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int


class UrlPolicy:
    def __init__(self, allow_private: list[str] | tuple[str, ...] = ()) -> None:
        self._allowed = [ipaddress.ip_network(a, strict=False) for a in allow_private]
        self._exact = {ipaddress.ip_address(a.split("/")[0]) for a in allow_private if "/" not in a}

    def parse(self, url: str) -> Target:
        """Syntax checks that need no network."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise PolicyError("invalid_url", f"malformed URL {url!r}: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise PolicyError("invalid_url", f"scheme {scheme or '(none)'!r} is not http or https")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise PolicyError("invalid_url", f"URL {url!r} has no host")
        if parts.username or parts.password:
            raise PolicyError("invalid_url", "URLs with credentials are refused")
        return Target(scheme, host, port or (443 if scheme == "https" else 80))

    def address_allowed(self, addr: IPAddress) -> bool:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        if addr in METADATA_ADDRESSES:
            return addr in self._exact
        if addr.is_global and not addr.is_multicast:
            return True
        return any(addr in net for net in self._allowed)

    def why_refused(self, addr: IPAddress) -> str:
        if addr in METADATA_ADDRESSES:
            return "a cloud metadata address"
        for label in ("loopback", "link_local", "multicast", "private", "reserved", "unspecified"):
            if getattr(addr, f"is_{label}", False):
                return f"a {label.replace('_', '-')} address"
        return "not a public address"

    async def resolve(self, target: Target) -> list[IPAddress]:
        """Resolve and check every address the name has (any refused address refuses the name)."""
        try:
            literal = ipaddress.ip_address(target.host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            addrs = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise PolicyError("error", f"cannot resolve host {target.host!r}: {exc.strerror}") from exc
            addrs = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
        for addr in addrs:
            if not self.address_allowed(addr):
                raise PolicyError(
                    "blocked",
                    f"host {target.host} resolves to {addr}, {self.why_refused(addr)} "
                    "(refused; allow it with fetch.allow_private)",
                )
        return addrs


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that connects only to addresses the policy allows.

    Raises `PolicyError` (outcome `blocked`) before any socket is created for a refused address."""

    def __init__(self, policy: UrlPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()
        self.connected: Counter[tuple[str, int]] = Counter()  # connections opened per (address, port)

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None, socket_options=None) -> httpcore.AsyncNetworkStream:
        addrs = await self.policy.resolve(Target("http", host, port))
        last: Exception | None = None
        for addr in addrs:  # every address passed the policy; try them in resolver order
            try:
                stream = await self.inner.connect_tcp(str(addr), port, timeout=timeout, local_address=local_address,
                                                      socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            self.connected[(str(addr), port)] += 1
            return FixedInfoStream(stream)
        raise last or httpcore.ConnectError(f"no address to connect to for {host}")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options=None) -> httpcore.AsyncNetworkStream:
        raise PolicyError("blocked", "unix sockets are never fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


# What a connection's stream reports that cannot change while it is open.
_FIXED_INFO = frozenset({"socket", "server_addr", "client_addr", "ssl_object"})


class FixedInfoStream(httpcore.AsyncNetworkStream):
    """A connection's stream, answering httpcore's questions about its socket from values read once.

    Each time httpcore's pool assigns a request it asks every pooled connection whether its socket is
    readable (an idle one that is was closed by the server), and anyio answers by building a dict of all
    the socket's attributes, peer address lookup included: with 32 pooled connections that was a fifth of
    the fetch loop's CPU. Here the socket is looked up once and polled directly; the answers are the same.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._fixed: dict[str, object] = {}

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return FixedInfoStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> object:
        if info == "is_readable":
            return _is_readable(self.get_extra_info("socket"))
        if info not in _FIXED_INFO:
            return self._inner.get_extra_info(info)
        if info not in self._fixed:
            self._fixed[info] = self._inner.get_extra_info(info)
        return self._fixed[info]


def _is_readable(sock: object) -> bool:
    """Whether a read would return at once (data, or the b"" of a closed connection), as httpcore's
    `is_socket_readable`: a socket that is gone counts as readable."""
    fileno = getattr(sock, "fileno", None)  # a socket.socket, or asyncio's TransportSocket around one
    fd = fileno() if fileno is not None else -1
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
