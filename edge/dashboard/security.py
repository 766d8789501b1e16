"""Who may talk to the dashboard: a Host check against DNS rebinding, and an optional token.

DNS rebinding: a web page on evil.example.com makes its own name resolve to 127.0.0.1 and then
reads http://evil.example.com:8080/api/history from the victim's browser, same-origin as far as
the browser knows. The only thing that gives it away is the Host header, so requests are served
only for the names the server is actually reached by: localhost, the loopback addresses, the
bound address, IP literals when bound to every interface, and the names given with
``--allowed-host``.

Token: with one set (``--token`` or ``$PLATEWATCH_DASHBOARD_TOKEN``), every request needs it, as
``Authorization: Bearer TOKEN`` (scripts) or the cookie the page sets after one visit to
``/?token=TOKEN`` (browsers: the page, its stream and its crop images then just work).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

COOKIE = "platewatch_token"


LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_INTERFACE = frozenset({"0.0.0.0", "::", ""})


def host_name(header: str | None) -> str | None:
    """The name part of a Host header (``[::1]:8080`` -> ``::1``), lower-case."""
    if not header:
        return None
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else None
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Access:
    bind: str = "127.0.0.1"
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    token: str | None = None

    @staticmethod
    def make(bind: str, allowed: Iterable[str] = (), token: str | None = None) -> Access:
        return Access(
            bind, frozenset(a.strip().lower() for a in allowed if a.strip()), token or None
        )

    def host_ok(self, header: str | None) -> bool:
        name = host_name(header)
        if name is None:
            return False
        if name in LOOPBACK or name in self.allowed_hosts or name == self.bind.lower():
            return True
        # Bound to every interface: any address of this machine typed as a literal is fine (a
        # rebinding attack needs a *name* that resolves here).
        return self.bind in ANY_INTERFACE and _is_ip(name)

    def authorized(self, authorization: str | None, cookie_header: str | None) -> bool:
        """The request's ``Authorization`` and ``Cookie`` headers carry the token."""
        if self.token is None:
            return True
        auth = authorization or ""
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip(), self.token):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(cookie_header or "")
        except Exception:  # a malformed cookie header is simply no token
            return False
        value = cookie.get(COOKIE)
        return value is not None and hmac.compare_digest(value.value, self.token)

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given, self.token)

    def set_cookie(self) -> str:
        return f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
