"""Incremental Server-Sent Events parser: bytes in (any chunking), `data` payloads out.

Works on bytes and decodes only complete lines, so a UTF-8 character split across network
chunks is never decoded in halves (a line break byte never occurs inside a multi-byte
character). Follows the SSE line rules: LF, CRLF or CR end a line; a blank line ends an event;
lines starting with ':' are comments (keep-alive pings); `data:` with or without the space;
several `data` lines of one event are joined by LF; other fields (event, id, retry) are ignored.
"""

from __future__ import annotations

_CR = b"\r"
_LF = b"\n"
_COLON = 58  # ord(":")


class SSEParser:
    """Feed raw chunks with `feed`; call `close` at the end of the stream."""

    __slots__ = ("_data", "_tail")

    def __init__(self) -> None:
        self._tail = b""  # an incomplete last line, kept for the next chunk
        self._data: list[bytes] = []  # data lines of the event being read

    def feed(self, chunk: bytes) -> list[str]:
        """Return the data payloads of every event completed by this chunk."""
        buf = self._tail + chunk if self._tail else chunk
        hold_cr = False
        if _CR in buf:
            # A CR at the very end may be the first half of a CRLF split across chunks.
            if buf.endswith(_CR):
                buf, hold_cr = buf[:-1], True
            buf = buf.replace(b"\r\n", _LF).replace(_CR, _LF)
        lines = buf.split(_LF)
        self._tail = lines.pop() + (_CR if hold_cr else b"")
        return self._lines(lines)

    def close(self) -> list[str]:
        """End of stream: an unterminated last line and event still count."""
        tail, self._tail = self._tail, b""
        lines = tail.replace(b"\r\n", _LF).replace(_CR, _LF).split(_LF) if tail else []
        lines.append(b"")  # the end of the stream ends the pending event
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[str]:
        events: list[str] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(b"\n".join(data).decode("utf-8", "replace"))
                    data = self._data = []
                continue
            if line[0] == _COLON:
                continue
            name, sep, value = line.partition(b":")
            if name != b"data":
                continue
            if sep and value[:1] == b" ":
                value = value[1:]
            data.append(value)
        return events
