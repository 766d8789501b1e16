"""The dashboard's Host check (DNS rebinding) and token (edge.dashboard.security)."""

from __future__ import annotations

from edge.dashboard.security import COOKIE, Access, host_name


def test_host_names() -> None:
    assert host_name("LocalHost:8080") == "localhost"
    assert host_name("[::1]:8080") == "::1"
    assert host_name("10.0.0.5") == "10.0.0.5"
    assert host_name(None) is None and host_name("") is None


def test_only_the_names_it_is_reached_by() -> None:
    local = Access.make("127.0.0.1")
    assert local.host_ok("127.0.0.1:8080") and local.host_ok("localhost:8080")
    assert not local.host_ok("evil.example.com:8080")  # a rebinding page
    assert not local.host_ok(None)
    wide = Access.make("0.0.0.0", ["gate-pc.local"])
    assert wide.host_ok("192.168.1.20:8080") and wide.host_ok("gate-pc.local")
    assert not wide.host_ok("evil.example.com")
    assert Access.make("10.0.0.9").host_ok("10.0.0.9:80")


def test_token_by_header_or_cookie() -> None:
    open_ = Access.make("127.0.0.1")
    assert open_.authorized(None, None)
    locked = Access.make("127.0.0.1", token="s3cret-token")
    assert not locked.authorized(None, None)
    assert locked.authorized("Bearer s3cret-token", None)
    assert not locked.authorized("Bearer wrong", None)
    assert locked.authorized(None, f"other=1; {COOKIE}=s3cret-token")
    assert not locked.authorized(None, f"{COOKIE}=nope") and not locked.authorized(None, '"bad')
    assert locked.set_cookie().startswith(f"{COOKIE}=s3cret-token;")
    assert "HttpOnly" in locked.set_cookie() and "SameSite=Strict" in locked.set_cookie()
