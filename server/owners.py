"""Who a request acts for: the signed-in user, the client's owner key, or the server's local owner.

Every asset records its owner, and a request sees, changes and cancels only its own owner's assets. The owner is:

* `user:<name>`: someone signed in (Hugging Face OAuth on a Space, or Gradio's own login);
* `key:<digest>`: an API client that sends an owner key in the `x-o3f-owner` header (the add-on sends the one it
  keeps in its preferences); only a digest of the key is stored, so the workspace never holds the key itself;
* `session:<hash>`: an anonymous visitor of a Space, for as long as their page stays open;
* `local`: anyone else on a self-hosted server. They have already passed the access token (server/auth.py) or
  come from this machine, so they are one trusted owner, and assets made before owners existed are theirs.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from .errors import InputError

LOCAL = "local"
OWNER_HEADER = "x-o3f-owner"
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def on_space() -> bool:
    """A Hugging Face Space sets SPACE_ID in the environment of its app."""
    return bool(os.environ.get("SPACE_ID"))


def key_owner(key: str) -> str:
    """The owner an owner key stands for; refuses a key that is too short or has other characters."""
    if not isinstance(key, str) or not _KEY_PATTERN.fullmatch(key):
        raise InputError(f"{OWNER_HEADER} header", "(hidden)", "16 to 128 letters, digits, '-' or '_'")
    return "key:" + hashlib.sha256(key.encode("ascii")).hexdigest()[:32]


def _oauth_name(request: Any) -> str | None:
    """The Hugging Face user signed in through the Space's OAuth, read from the session like Gradio does."""
    raw = getattr(request, "request", None)
    try:
        session = raw.session if raw is not None else None
    except (AssertionError, AttributeError):  # Starlette asserts when no session middleware is installed
        return None
    info = (session or {}).get("oauth_info") or {}
    return (info.get("userinfo") or {}).get("preferred_username")


def owner_of(request: Any, space: bool | None = None) -> str:
    """The owner a Gradio request acts for (see the module docstring); `request` may be None (direct calls)."""
    if request is None:
        return LOCAL
    name = getattr(request, "username", None) or _oauth_name(request)
    if name:
        return f"user:{name}"
    headers = {str(k).lower(): v for k, v in dict(getattr(request, "headers", None) or {}).items()}
    if headers.get(OWNER_HEADER):
        return key_owner(headers[OWNER_HEADER])
    if on_space() if space is None else space:
        session = getattr(request, "session_hash", None)
        if session:
            return f"session:{session}"
    return LOCAL
