"""URL policy: which URLs we may fetch at all (the first fetch layer, applied again after every redirect).

Only http(s). Hosts must resolve to public addresses: loopback, private, link-local, multicast, reserved,
shared (CGNAT) and cloud-metadata addresses are refused unless the config allow-lists them, so a feed
cannot make us reach into the network we run in (SSRF).

The check that matters happens where the socket is opened: `GuardedConnector` is the HTTP client's
resolver and socket factory, so every TCP connection (first request, each redirect hop, robots.txt)
resolves the name itself, checks every address, and connects only to an address it checked. A name that
resolves to a public address for the check and to 169.254.169.254 a moment later (DNS rebinding)
therefore cannot get through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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


class GuardedConnector:
    """What every TCP connection of the HTTP client goes through: aiohttp's resolver and socket factory.

    The resolver resolves each connection's host itself (no DNS cache) and refuses the name when any of its
    addresses is refused; the socket factory checks the address a socket is about to connect to (IP literal
    hosts skip the resolver) and raises `PolicyError` (outcome `blocked`) before any socket exists."""

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy
        self.connected: Counter[tuple[str, int]] = Counter()  # sockets made to connect, per (address, port)
        self.resolver = _policy_resolver(policy)

    def socket_factory(self, addr_info: tuple) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address, port = str(sockaddr[0]), int(sockaddr[1])
        addr = ipaddress.ip_address(address.split("%")[0])
        if not self.policy.address_allowed(addr):
            raise PolicyError("blocked", f"address {addr} is {self.policy.why_refused(addr)} "
                                         "(refused; allow it with fetch.allow_private)")
        self.connected[(address, port)] += 1
        return socket.socket(family, type_, proto)


def _policy_resolver(policy: UrlPolicy) -> Any:
    """aiohttp resolver: `UrlPolicy.resolve` (every address checked) for each new connection. Made here, not
    at import: the config check imports this module, and aiohttp costs ~0.15 s to import."""
    from aiohttp.abc import AbstractResolver

    class _PolicyResolver(AbstractResolver):
        def __init__(self, policy: UrlPolicy) -> None:
            self.policy = policy

        async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, object]]:
            addrs = await self.policy.resolve(Target("http", host, port))
            return [{"hostname": host, "host": str(a), "port": port,
                     "family": socket.AF_INET6 if a.version == 6 else socket.AF_INET, "proto": 0, "flags": 0}
                    for a in addrs]

        async def close(self) -> None:
            return None

    return _PolicyResolver(policy)
