"""Paths of our own pages, written into links: what people typed stays one path segment.

Apart from :mod:`shared.web` on purpose: reporting's render processes build links too and
import nothing of FastAPI, the database drivers or the tracing (twice their memory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection


def segment(value: str) -> str:
    """``value`` as one path segment of a URL: unit codes, indicator and petition ids are written
    by people, and a ``?``, ``#``, ``/`` or ``%`` in one must not end the path or start a query."""
    return quote(value, safe="")


def page_path(request: HTTPConnection) -> str:
    """The path of the page answering ``request``, for its own links (the language switch), each
    segment encoded again: the decoded path holds a code as typed, and ``request.url.path``
    leaves a ``%`` in it as it is (``/units/50%25`` linked to ``/units/50%``)."""
    return "/".join(segment(s) for s in request.scope["path"].split("/"))
