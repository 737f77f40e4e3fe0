"""WebSocket framing (RFC 6455), sans I/O: no socket, thread or clock.

Why our own: websocket-client reads each frame with three ``recv()`` calls (header,
extended length, payload) and runs a pure-Python frame object per message. Parsing every
frame found in one large buffered read is what makes the receive path fast (see the
project's PERFORMANCE notes). websocket-client still does the HTTP handshake, TLS and
proxies (``transport.py``); this module only sees bytes after the handshake.

``FrameParser.feed(data)`` returns the complete messages found so far as
``(opcode, payload)`` pairs: data messages with fragments joined, control frames as they
come. Violations raise ``FrameError`` with the close code the client must send, and with the
messages that came before the violation in the same bytes (``FrameError.frames``): those are
delivered first, as if the bad frame had arrived in a later read.

Close frames are checked by ``parse_close_payload`` (RFC 6455 section 7.4): a one-byte payload,
a code that may not be sent (1004-1006, 1015, anything outside 1000-4999, ...) or a reason that
is not UTF-8 are protocol errors, never echoed back.
"""

from __future__ import annotations

import os
import struct
import threading

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameError",
    "FrameParser",
    "check_user_close",
    "encode_close_payload",
    "encode_frame",
    "parse_close_payload",
    "valid_close_code",
]

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_DATA_OPS = (OP_TEXT, OP_BINARY)
_CONTROL_OPS = (OP_CLOSE, OP_PING, OP_PONG)
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")

DEFAULT_MAX_SIZE = 64 * 1024 * 1024


class FrameError(Exception):
    """The peer broke the framing rules; the connection must close with ``code``.

    Attributes:
        code: The close code to fail the connection with (1002, 1007 or 1009).
        frames: The complete messages parsed before the violation, in order.
    """

    def __init__(
        self, message: str, code: int = 1002, frames: list[tuple[int, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.frames: list[tuple[int, bytes]] = frames if frames is not None else []


class FrameParser:
    """Incremental parser of server-to-client frames.

    Args:
        max_size: The largest message (after joining fragments) accepted, in bytes;
            beyond it ``FrameError`` with close code 1009.
    """

    __slots__ = (
        "_buffered",
        "_frag_op",
        "_frag_parts",
        "_frag_size",
        "_need",
        "_pending",
        "max_size",
    )

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self._pending: list[bytes] = []  # bytes of an incomplete frame, not yet joined
        self._buffered = 0  # their total length
        self._need = 0  # how many bytes that frame needs in all, when its header is known
        self._frag_op = -1
        self._frag_parts: list[bytes] = []
        self._frag_size = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Adds received bytes; returns every message completed by them, in order.

        Raises:
            FrameError: The bytes break RFC 6455 (masked server frame, reserved bits,
                unknown opcode, bad fragmentation, oversized message).
        """
        if self._pending:
            # A large frame arrives over many reads: join only once it is complete.
            self._pending.append(data)
            self._buffered += len(data)
            if self._buffered < self._need:
                return []
            data = b"".join(self._pending)
            self._pending = []
        self._need = 0
        out: list[tuple[int, bytes]] = []
        try:
            self._parse(data, out)
        except FrameError as exc:
            exc.frames = out
            raise
        return out

    def _parse(self, data: bytes, out: list[tuple[int, bytes]]) -> None:
        pos = 0
        end = len(data)
        max_size = self.max_size
        append = out.append
        fragmented = self._frag_op != -1  # changes only in _slow_frame: re-read after it
        # The hot loop: one iteration per frame, slicing straight out of ``data``.
        while end - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1]
            start = pos + 2
            if length > 125:
                if length > 127:
                    raise FrameError("server frames must not be masked")
                if length == 126:
                    if end - start < 2:
                        break
                    length = (data[start] << 8) | data[start + 1]
                    start += 2
                else:
                    if end - start < 8:
                        break
                    length = _U64.unpack_from(data, start)[0]
                    start += 8
            if length > max_size:
                raise FrameError(f"frame of {length} bytes exceeds max_size", 1009)
            stop = start + length
            if stop > end:
                self._need = stop - pos
                break
            pos = stop
            if (b0 == 0x81 or b0 == 0x82) and not fragmented:  # FIN, one whole data frame
                append((b0 & 0x0F, data[start:stop]))
                continue
            self._slow_frame(b0, b0 & 0x0F, data[start:stop], out)
            fragmented = self._frag_op != -1
        if pos < end:
            self._pending = [data[pos:]]
            self._buffered = end - pos

    def _slow_frame(
        self, b0: int, opcode: int, payload: bytes, out: list[tuple[int, bytes]]
    ) -> None:
        fin = b0 & 0x80
        if b0 & 0x70:
            raise FrameError("reserved bits set without a negotiated extension")
        if opcode in _CONTROL_OPS:
            if not fin or len(payload) > 125:
                raise FrameError("control frames must be whole and at most 125 bytes")
            out.append((opcode, payload))
        elif opcode in _DATA_OPS:
            if self._frag_op != -1:
                raise FrameError("new data frame inside a fragmented message")
            if fin:
                out.append((opcode, payload))
            else:
                self._frag_op = opcode
                self._frag_parts = [payload]
                self._frag_size = len(payload)
        elif opcode == OP_CONT:
            if self._frag_op == -1:
                raise FrameError("continuation frame without a message to continue")
            self._frag_size += len(payload)
            if self._frag_size > self.max_size:
                raise FrameError("fragmented message exceeds max_size", 1009)
            self._frag_parts.append(payload)
            if fin:
                out.append((self._frag_op, b"".join(self._frag_parts)))
                self._frag_op = -1
                self._frag_parts = []
                self._frag_size = 0
        else:
            raise FrameError(f"unknown opcode {opcode:#x}")


def _mask(key: bytes, payload: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    # XOR as one big integer: far faster in CPython than a per-byte loop.
    full = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(full, "little")).to_bytes(
        n, "little"
    )


_keys = b""
_key_pos = 0
_keys_lock = threading.Lock()


def _mask_key() -> bytes:
    """Four bytes from the OS's CSPRNG (RFC 6455 wants unpredictable keys), fetched 4 KiB at
    a time: one ``getrandom`` call per 1,024 frames instead of one per frame."""
    global _keys, _key_pos
    with _keys_lock:
        if _key_pos >= len(_keys):
            _keys, _key_pos = os.urandom(4096), 0
        _key_pos += 4
        return _keys[_key_pos - 4 : _key_pos]


def encode_frame(opcode: int, payload: bytes, mask_key: bytes | None = None) -> bytes:
    """Builds one whole client frame (FIN set, masked as RFC 6455 requires).

    Args:
        opcode: One of the ``OP_*`` constants.
        payload: The frame's payload.
        mask_key: Four bytes; a fresh random key when None (tests pass a fixed one).
    """
    key = mask_key if mask_key is not None else _mask_key()
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0xFE)) + _U16.pack(n)
    else:
        header = bytes((0x80 | opcode, 0xFF)) + _U64.pack(n)
    return header + key + _mask(key, payload)


def valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 7.4 and the IANA registry):
    1000-1003, 1007-1014 and 3000-4999. 1005, 1006 and 1015 are for reporting only."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def encode_close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a close frame: the code, then the UTF-8 reason; ``None``: empty.

    Raises:
        ValueError: ``code`` may not be sent (see ``valid_close_code``).
    """
    if code is None:
        return b""
    if not valid_close_code(code):
        raise ValueError(f"close code {code} may not be sent in a close frame")
    return _U16.pack(code) + reason.encode("utf-8")


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Reads a close frame's payload; an empty one means 1005 (no status received).

    Raises:
        FrameError: A one-byte payload or a code that may not be sent (1002), or a reason
            that is not valid UTF-8 (1007).
    """
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise FrameError("close frame with a one-byte payload")
    code = _U16.unpack_from(payload, 0)[0]
    if not valid_close_code(code):
        raise FrameError(f"close frame with the invalid code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError("close frame whose reason is not valid UTF-8", 1007) from None
    return code, reason


def check_user_close(code: int, reason: str) -> None:
    """The browser's rules for ``close(code, reason)``: 1000 or 3000-4999, and a reason of at
    most 123 UTF-8 bytes.

    Raises:
        ValueError: Another code, or a longer reason.
        TypeError: A reason that is not a str.
    """
    if not isinstance(reason, str):
        raise TypeError(f"close reason must be a str, not {type(reason).__name__}")
    if isinstance(code, bool) or not isinstance(code, int):
        raise ValueError(f"close code must be an int, not {code!r}")
    if code != 1000 and not 3000 <= code <= 4999:
        raise ValueError(f"close code must be 1000 or in 3000-4999, not {code}")
    if len(reason.encode("utf-8")) > 123:
        raise ValueError("close reason must be at most 123 UTF-8 bytes")
