"""Where an alert rule's webhook may call, and the call itself.

``RATEPAD_WEBHOOK_ALLOW`` (settings ``WEBHOOK_ALLOW``) lists, comma-separated, what a webhook URL
may name:

* host names: ``hooks.example.com`` (that name), ``.example.com`` (it and its subdomains),
  ``*`` (any host, as long as it is or resolves to public addresses only);
* IP addresses and networks: ``10.20.0.0/16``, ``127.0.0.1``, ``::1``.

A URL is http or https, without user or password, and its host is listed (a name by name, an
address by a listed network). Every address its name resolves to must be public: private,
loopback, link-local, multicast, reserved and shared addresses are refused unless a listed
address or network holds them (so a listed name that resolves to 127.0.0.1 is refused unless
127.0.0.1 is listed too). Nothing listed: no webhook is allowed.

Checked when a rule is saved and again at every send (a name may resolve elsewhere by then: DNS
rebinding); the call connects to the address that was checked, keeps the name for the Host
header and the TLS certificate, and follows no redirect.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookRefused(ValueError):
    """A webhook URL the allowlist does not admit (the message says why)."""


class WebhookFailed(OSError):
    """The receiver answered, but not with success (a redirect counts as a failure)."""


@dataclass(frozen=True)
class Allowlist:
    names: tuple[str, ...]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, text: str) -> Allowlist:
        names: list[str] = []
        networks: list[IPNetwork] = []
        for entry in (e.strip().lower() for e in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.append(entry.rstrip("."))
        return cls(tuple(names), tuple(networks))

    def admits_name(self, host: str) -> bool:
        return any(
            entry == "*"
            or host == entry
            or (entry.startswith(".") and (host.endswith(entry) or host == entry[1:]))
            for entry in self.names
        )

    def admits_literal(self, address: IPAddress) -> bool:
        """A URL naming an address: listed (its network), or public under ``*``."""
        if any(address in net for net in self.networks):
            return True
        return "*" in self.names and self.admits_address(address)

    def admits_address(self, address: IPAddress) -> bool:
        """Listed explicitly, or public (a global unicast address)."""
        if any(address in net for net in self.networks):
            return True
        return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect, and what to ask for."""

    https: bool
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]


def configured() -> Allowlist:
    from django.conf import settings

    return Allowlist.parse(getattr(settings, "WEBHOOK_ALLOW", ""))


def check_url(url: str, allow: Allowlist | None = None) -> Target:
    """The URL's target if the allowlist admits it and every address its host resolves to;
    else ``WebhookRefused``."""
    allow = configured() if allow is None else allow
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookRefused(f"webhook {url!r}: not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused("webhook: an http:// or https:// URL only")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookRefused("webhook: the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused("webhook: no user or password in the URL")
    literal = _literal(host)
    if not (allow.admits_name(host) if literal is None else allow.admits_literal(literal)):
        raise WebhookRefused(f"webhook: {host} is not in RATEPAD_WEBHOOK_ALLOW")
    https = parts.scheme == "https"
    port = port or (443 if https else 80)
    addresses = (literal,) if literal is not None else _resolve(host, port)
    for address in addresses:
        if not allow.admits_address(address):
            raise WebhookRefused(
                f"webhook: {host} is {address}, not a public address (allow it by listing "
                "the address or its network in RATEPAD_WEBHOOK_ALLOW)"
            )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(https, host, port, path, addresses)


def _literal(host: str) -> IPAddress | None:
    try:
        return _plain(ipaddress.ip_address(host))
    except ValueError:
        return None


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookRefused(f"webhook: cannot resolve {host}: {exc}") from None
    found: list[IPAddress] = []
    for info in infos:
        address = _plain(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        if address not in found:
            found.append(address)
    if not found:
        raise WebhookRefused(f"webhook: {host} has no address")
    return tuple(found)


class _Pinned(http.client.HTTPConnection):
    """Connects to the checked address, whatever the name resolves to by now."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = str(target.addresses[0])

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = str(target.addresses[0])
        self.tls = ssl.create_default_context()

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)  # the name's certificate


def post_json(url: str, body: Any, timeout: float = 10, allow: Allowlist | None = None) -> int:
    """POST ``body`` as JSON to a checked ``url``; its 2xx status, else ``WebhookFailed`` (or
    ``WebhookRefused``, ``OSError`` on the way)."""
    target = check_url(url, allow)
    conn = (_PinnedTLS if target.https else _Pinned)(target, timeout)
    try:
        conn.request("POST", target.path, body=json.dumps(body).encode(), headers={
            "Content-Type": "application/json", "User-Agent": "ratepad-server"})  # fmt: skip
        response = conn.getresponse()
        response.read(64 * 1024)  # the answer is not used; a bounded read
        status = response.status
        if not 200 <= status < 300:
            why = " (redirects are not followed)" if 300 <= status < 400 else ""
            raise WebhookFailed(f"webhook answered HTTP {status}{why}")
        return status
    finally:
        conn.close()
