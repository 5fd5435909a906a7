"""One normalisation of the request path, done before anything routes on it.

The gateway routes, limits and forwards on the path this module returns, and nothing else:
if routing looked at one form of the path (decoded by the server) and the HTTP client
forwarded another (with dot segments resolved), ``/static/feedback/%2e%2e/%2e%2e/api/v1/ratings``
would escape the citizen limits of ``/api/v1/ratings``. Rather than resolve such paths, the
gateway refuses what no client of SQI needs: dot segments (``.``/``..``, encoded or not),
encoded slashes, backslashes, control characters and bytes that are not UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

# Characters a path segment keeps as they are (RFC 3986 pchar minus "%"); the rest is encoded.
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


class BadPath(ValueError):
    """The path (or query) cannot be routed safely; the reason is fit for the caller."""

    def __init__(self, reason: str, *, field: str = "path") -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class NormalPath:
    decoded: str  # what routing and limits look at
    encoded: str  # what is forwarded upstream, byte for byte


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or ord(char) == 0x7F


def normalise(raw_path: bytes) -> NormalPath:
    """The routed and forwarded forms of a raw request path, or :class:`BadPath`."""
    try:
        text = raw_path.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadPath("the path must be ASCII (percent-encode other characters)") from exc
    if not text.startswith("/"):
        raise BadPath("the path must start with '/'")
    if "\\" in text:
        raise BadPath("backslashes are not allowed in the path")
    if any(_is_control(c) for c in text):
        raise BadPath("control characters are not allowed in the path")
    segments: list[str] = []
    raw_segments = text[1:].split("/")
    for index, raw_segment in enumerate(raw_segments):
        try:
            segment = unquote_to_bytes(raw_segment).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadPath("the path is not valid UTF-8 once decoded") from exc
        if segment in (".", ".."):
            raise BadPath("'.' and '..' segments are not allowed in the path")
        if "/" in segment:
            raise BadPath("encoded slashes (%2F) are not allowed in the path")
        if "\\" in segment:
            raise BadPath("backslashes are not allowed in the path")
        if any(_is_control(c) for c in segment):
            raise BadPath("control characters (%00–%1F, %7F) are not allowed in the path")
        # Repeated slashes collapse; a single trailing slash is kept (some routes mean it).
        if segment == "" and index != len(raw_segments) - 1:
            continue
        segments.append(segment)
    decoded = "/" + "/".join(segments)
    encoded = "/" + "/".join(quote(s, safe=_SEGMENT_SAFE) for s in segments)
    return NormalPath(decoded=decoded, encoded=encoded)


def check_query(raw_query: bytes) -> None:
    """Control characters in a query string are never meaningful to SQI and cannot be stored."""
    if any(b < 0x20 or b == 0x7F for b in raw_query):
        raise BadPath("control characters are not allowed in the query", field="query")
    if any(b >= 0x80 for b in raw_query):
        raise BadPath("the query must be ASCII (percent-encode other characters)", field="query")
    if any(b < 0x20 or b == 0x7F for b in unquote_to_bytes(raw_query)):
        raise BadPath("control characters (%00–%1F, %7F) are not allowed in the query", field="query")
