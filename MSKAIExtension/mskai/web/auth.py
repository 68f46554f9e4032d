"""Who may drive the page: a secret token in the URL, checked by wslink on every websocket
(its ``wslink.hello`` handshake); without it no message reaches the app."""

from __future__ import annotations

import ipaddress
import secrets

TOKEN_BYTES = 24
LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8, ::1; False for every other name or address."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def page_url(host: str, port: int, token: str) -> str:
    """The address to open; the page hands ``secret`` to its websocket."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/?secret={token}"
