"""The browser security headers of every answer, set here and nowhere else.

Every page reaches a browser through the gateway (the public ranking, the dashboard, the
citizens' forms, ``/docs``), so one policy here covers them all, proxied or the gateway's own.
The pages load nothing from another host (no CDN) and run no inline script, so the policy can
say exactly that: a value that slipped past escaping still could not run script, load a
resource from elsewhere, or post a form off the site. ``/docs``' one inline bootstrap script is
allowed by its hash, not by ``'unsafe-inline'``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.web import wrap_whole_stack

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def script_hashes(page: str) -> list[str]:
    """The CSP sources (``'sha256-…'``) of the inline scripts of ``page``, our own markup."""
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(page)
    ]


def content_security_policy(inline_script_hashes: Iterable[str] = ()) -> str:
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *inline_script_hashes],
        # Inline style stays allowed: the trend chart (pygal's SVG) carries a <style> element and
        # Swagger UI sets style attributes. Style cannot run script, and with every other
        # source 'self' it cannot send anything off the site either.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],  # Swagger UI's icons are data: URLs
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


def security_headers(inline_script_hashes: Iterable[str] = ()) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", content_security_policy(inline_script_hashes).encode()),
        (b"x-content-type-options", b"nosniff"),  # a CSV or JSON body is never sniffed into HTML
        (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate it
        # The rating link carries the dossier's rating code in its query: never sent to another site.
        (b"referrer-policy", b"same-origin"),
    ]


class SecurityHeaders:
    """Sets ``headers`` on every HTTP answer, replacing any a service sent (one policy)."""

    def __init__(self, app: ASGIApp, *, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = headers
        self.names = frozenset(name for name, _ in headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in self.names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def set_on_every_answer(app: Starlette, headers: list[tuple[bytes, bytes]]) -> None:
    """Wrap ``app``'s whole middleware stack in :class:`SecurityHeaders`, a 500 included.

    Starlette answers an unhandled error in ``ServerErrorMiddleware``, outside every middleware
    added with ``add_middleware``: a header set from inside never reached that answer
    (:func:`shared.web.wrap_whole_stack`). Called after ``shared.web.create_app``, it wraps the
    request ids' wrapper too, so a 500 carries both.
    """
    wrap_whole_stack(app, lambda stack: SecurityHeaders(stack, headers=headers))
