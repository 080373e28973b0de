"""A self-hosted server's access token: every HTTP request and websocket must carry it (ASGI middleware).

The token comes from O3F_TOKEN or the file named by O3F_TOKEN_FILE. A client sends it as `Authorization: Bearer`
(gradio_client's `token=` sends it as `x-hf-authorization: Bearer`, which is accepted too), as `x-o3f-token`, or,
for a browser, once as `?o3f_token=` in the address, after which a cookie carries it. A server that listens beyond
loopback refuses to start without a token unless it is told the network is trusted. The token is never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

TOKEN_ENV, TOKEN_FILE_ENV = "O3F_TOKEN", "O3F_TOKEN_FILE"
COOKIE, QUERY, HEADER = "o3f_token", "o3f_token", "x-o3f-token"
# Gradio's launch() calls this route of its own server, without our token, before it answers anyone.
STARTUP_ROUTE = "/gradio_api/startup-events"
MIN_LENGTH = 16


class AuthSetupError(Exception):
    """The server cannot start as configured; the message says what to change."""


def load_token(environ: dict | None = None) -> str | None:
    """The configured token, or None; refuses a short one or an unreadable file."""
    environ = os.environ if environ is None else environ
    token = (environ.get(TOKEN_ENV) or "").strip()
    path = (environ.get(TOKEN_FILE_ENV) or "").strip()
    if not token and path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AuthSetupError(f"{TOKEN_FILE_ENV}={path!r}: cannot read it ({exc.strerror})") from exc
    if not token:
        return None
    if len(token) < MIN_LENGTH:
        raise AuthSetupError(f"{TOKEN_ENV}: expected at least {MIN_LENGTH} characters (e.g. from "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`)")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None, trusted_network: bool) -> None:
    """Refuse to listen beyond loopback without a token, unless the network is declared trusted."""
    if token is None and not is_loopback(host) and not trusted_network:
        raise AuthSetupError(f"--host {host}: the server would be reachable by others without a token. Set "
                             f"{TOKEN_ENV} (or {TOKEN_FILE_ENV}) and give it to your clients, or pass "
                             "--trusted-network if everyone who can reach this address may use it")


def _presented(scope: dict) -> str | None:
    headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
    for name in ("authorization", "x-hf-authorization"):
        value = headers.get(name, "")
        if value.lower().startswith("bearer "):
            return value[7:].strip()
    if headers.get(HEADER):
        return headers[HEADER].strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get(QUERY):
        return query[QUERY][0]
    cookie = SimpleCookie(headers.get("cookie", ""))
    return cookie[COOKIE].value if COOKIE in cookie else None


class TokenMiddleware:
    """ASGI middleware: answers 401 to any request without the token (compared in constant time)."""

    def __init__(self, app, token: str):
        self.app, self._token = app, token.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("", 0))[0]
        if scope.get("path") == STARTUP_ROUTE and is_loopback(client):
            return await self.app(scope, receive, send)
        presented = _presented(scope)
        if presented is None or not hmac.compare_digest(presented.encode(), self._token):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 4401})
            body = json.dumps({"error": "this Open3DForge server needs its access token: send it as "
                                        "'Authorization: Bearer <token>' (the add-on's Token preference)"}).encode()
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
            return await send({"type": "http.response.body", "body": body})
        if scope["type"] == "http" and _from_query(scope):
            return await self.app(scope, receive, _with_cookie(send, presented))
        return await self.app(scope, receive, send)


def _from_query(scope: dict) -> bool:
    return QUERY in parse_qs(scope.get("query_string", b"").decode("latin-1"))


def _with_cookie(send, token: str):
    """Set the cookie on the response, so a browser that came with ?o3f_token= keeps access."""
    async def sending(message):
        if message["type"] == "http.response.start":
            cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/".encode()
            message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
        await send(message)
    return sending
