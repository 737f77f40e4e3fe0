"""deriv_sdk.frames: the sans-I/O RFC 6455 parser and client frame encoder."""

from __future__ import annotations

import itertools
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websocket._abnf import ABNF, continuous_frame, frame_buffer

from deriv_sdk.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    FrameParser,
    _mask,
    encode_close_payload,
    encode_frame,
    parse_close_payload,
    valid_close_code,
)

LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 70000]
KEY = b"\x11\x22\x33\x44"


def server_frame(
    opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bytes | None = None
) -> bytes:
    """An unmasked (unless ``mask``) server frame, built independently of deriv_sdk."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        header = bytes((b0, mbit | n))
    elif n < 65536:
        header = bytes((b0, mbit | 126)) + struct.pack("!H", n)
    else:
        header = bytes((b0, mbit | 127)) + struct.pack("!Q", n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


def payload_of(n: int, seed: int = 0) -> bytes:
    return random.Random(seed * 1000003 + n).randbytes(n)


def unmask(data: bytes) -> tuple[int, bool, bytes]:
    """Decodes one masked client frame by hand: (opcode, fin, payload)."""
    assert data[1] & 0x80, "client frames must be masked"
    n = data[1] & 0x7F
    pos = 2
    if n == 126:
        n = struct.unpack_from("!H", data, 2)[0]
        pos = 4
    elif n == 127:
        n = struct.unpack_from("!Q", data, 2)[0]
        pos = 10
    key = data[pos : pos + 4]
    body = data[pos + 4 :]
    assert len(body) == n
    return data[0] & 0x0F, bool(data[0] & 0x80), bytes(b ^ key[i % 4] for i, b in enumerate(body))


# --- round trips by length class -----------------------------------------------------------


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_parse_every_length_class(n: int, opcode: int) -> None:
    payload = payload_of(n)
    assert FrameParser().feed(server_frame(opcode, payload)) == [(opcode, payload)]


@pytest.mark.parametrize(
    ("n", "header_len", "len_byte"),
    [(0, 2, 0), (125, 2, 125), (126, 4, 126), (65535, 4, 126), (65536, 10, 127), (70000, 10, 127)],
)
def test_encode_frame_header_and_masking(n: int, header_len: int, len_byte: int) -> None:
    payload = payload_of(n, 1)
    data = encode_frame(OP_BINARY, payload, KEY)
    assert data[0] == 0x80 | OP_BINARY
    assert data[1] == 0x80 | len_byte
    assert data[header_len : header_len + 4] == KEY
    assert len(data) == header_len + 4 + n
    assert unmask(data) == (OP_BINARY, True, payload)


@pytest.mark.parametrize("n", LENGTHS)
def test_encode_frame_parsed_by_websocket_client(n: int) -> None:
    payload = payload_of(n, 2)
    data = encode_frame(OP_TEXT, payload)  # a random key
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    frame = frame_buffer(_recv_from(chunks), skip_utf8_validation=True).recv_frame()
    assert (frame.opcode, frame.fin, frame.mask_value is not None) == (OP_TEXT, 1, True)
    assert frame.data == payload


def test_encode_frame_random_keys_differ() -> None:
    frames = {encode_frame(OP_TEXT, b"hello")[2:6] for _ in range(8)}
    assert len(frames) > 1


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 125, 1000, 70001])
def test_mask_round_trips(n: int) -> None:
    payload = payload_of(n, 3)
    masked = _mask(KEY, payload)
    assert len(masked) == n
    assert masked == bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))
    assert _mask(KEY, masked) == payload
    assert masked == ABNF.mask(KEY, payload)


def test_mask_keeps_leading_zero_bytes() -> None:
    # A payload equal to the key masks to all zeros: the length must survive.
    assert _mask(KEY, KEY * 3) == b"\x00" * 12
    assert _mask(KEY, b"\x00" * 7) == (KEY * 2)[:7]


# --- fragmentation and control frames -------------------------------------------------------


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_fragmented_message_with_interleaved_control_frames(opcode: int) -> None:
    parser = FrameParser()
    data = (
        server_frame(opcode, b"ab", fin=False)
        + server_frame(OP_PING, b"p1")
        + server_frame(OP_CONT, b"", fin=False)
        + server_frame(OP_PONG, b"")
        + server_frame(OP_CONT, payload_of(300), fin=False)
        + server_frame(OP_CONT, b"yz", fin=True)
        + server_frame(OP_TEXT, b"next")
    )
    assert parser.feed(data) == [
        (OP_PING, b"p1"),
        (OP_PONG, b""),
        (opcode, b"ab" + payload_of(300) + b"yz"),
        (OP_TEXT, b"next"),
    ]


def test_fragments_fed_one_frame_at_a_time() -> None:
    parser = FrameParser()
    assert parser.feed(server_frame(OP_TEXT, b"a", fin=False)) == []
    assert parser.feed(server_frame(OP_CONT, b"b", fin=False)) == []
    assert parser.feed(server_frame(OP_CLOSE, b"")) == [(OP_CLOSE, b"")]
    assert parser.feed(server_frame(OP_CONT, b"c")) == [(OP_TEXT, b"abc")]
    # The parser is ready for a new message afterwards.
    assert parser.feed(server_frame(OP_BINARY, b"d", fin=False)) == []
    assert parser.feed(server_frame(OP_CONT, b"e")) == [(OP_BINARY, b"de")]


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
@pytest.mark.parametrize("n", [0, 2, 125])
def test_control_frames(opcode: int, n: int) -> None:
    payload = payload_of(n, 4)
    assert FrameParser().feed(server_frame(opcode, payload)) == [(opcode, payload)]


def test_close_payload_round_trip() -> None:
    payload = encode_close_payload(1000, "bye é")
    assert payload == b"\x03\xe8" + "bye é".encode()
    assert parse_close_payload(payload) == (1000, "bye é")
    assert parse_close_payload(encode_close_payload(4001, "")) == (4001, "")


def test_close_payload_empty_means_1005() -> None:
    assert parse_close_payload(b"") == (1005, "")


def test_close_payload_bad_utf8_reason_is_a_1007_error() -> None:
    # Regression: an invalid UTF-8 reason was accepted (decoded with replacement).
    with pytest.raises(FrameError) as info:
        parse_close_payload(b"\x03\xe9\xff")
    assert info.value.code == 1007


def test_close_payload_of_one_byte_is_a_1002_error() -> None:
    with pytest.raises(FrameError) as info:
        parse_close_payload(b"\x03")
    assert info.value.code == 1002


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_close_payload_with_a_code_that_may_not_be_sent_is_a_1002_error(code: int) -> None:
    # Regression: forbidden codes were accepted as clean closes (and echoed on the wire).
    with pytest.raises(FrameError) as info:
        parse_close_payload(code.to_bytes(2, "big") + b"x")
    assert info.value.code == 1002


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999])
def test_close_payload_valid_codes(code: int) -> None:
    assert valid_close_code(code)
    assert parse_close_payload(encode_close_payload(code, "é")) == (code, "é")


@pytest.mark.parametrize("code", [1005, 1006, 1015, 999])
def test_codes_for_reporting_only_are_never_encoded(code: int) -> None:
    with pytest.raises(ValueError):
        encode_close_payload(code)
    assert encode_close_payload(None) == b""


def test_frames_before_a_violation_are_kept_on_the_error() -> None:
    # Regression: frames parsed in the same read just before a protocol violation were
    # thrown away instead of delivered.
    good = server_frame(OP_TEXT, b"one") + server_frame(OP_TEXT, b"two")
    error = _error(good + server_frame(OP_TEXT, b"bad", mask=KEY))
    assert error.frames == [(OP_TEXT, b"one"), (OP_TEXT, b"two")]


# --- errors --------------------------------------------------------------------------------


def _error(data: bytes, max_size: int | None = None) -> FrameError:
    parser = FrameParser() if max_size is None else FrameParser(max_size=max_size)
    with pytest.raises(FrameError) as info:
        parser.feed(data)
    return info.value


@pytest.mark.parametrize("n", [0, 5, 126, 65536])
def test_masked_server_frame(n: int) -> None:
    assert _error(server_frame(OP_TEXT, payload_of(n), mask=KEY)).code == 1002


@pytest.mark.parametrize("rsv", [1, 2, 4, 7])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING])
def test_reserved_bits(rsv: int, opcode: int) -> None:
    assert _error(server_frame(opcode, b"x", rsv=rsv)).code == 1002


@pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcode(opcode: int) -> None:
    assert _error(server_frame(opcode, b"x")).code == 1002


@pytest.mark.parametrize("fin", [True, False])
def test_continuation_without_start(fin: bool) -> None:
    assert _error(server_frame(OP_CONT, b"x", fin=fin)).code == 1002


@pytest.mark.parametrize("second_fin", [True, False])
@pytest.mark.parametrize("second", [OP_TEXT, OP_BINARY])
def test_new_data_frame_inside_fragmented_message(second: int, second_fin: bool) -> None:
    data = server_frame(OP_TEXT, b"a", fin=False) + server_frame(second, b"b", fin=second_fin)
    assert _error(data).code == 1002


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_fragmented_control_frame(opcode: int) -> None:
    assert _error(server_frame(opcode, b"x", fin=False)).code == 1002


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_control_frame_over_125_bytes(opcode: int) -> None:
    assert _error(server_frame(opcode, b"x" * 126)).code == 1002


def test_max_size_single_frame() -> None:
    assert FrameParser(max_size=100).feed(server_frame(OP_TEXT, b"x" * 100)) == [
        (OP_TEXT, b"x" * 100)
    ]
    assert _error(server_frame(OP_TEXT, b"x" * 101), max_size=100).code == 1009


def test_max_size_checked_from_the_header_alone() -> None:
    # The header announces 70000 bytes: rejected before the payload arrives.
    header = server_frame(OP_BINARY, payload_of(70000))[:10]
    assert _error(header, max_size=65536).code == 1009


def test_max_size_fragmented_message() -> None:
    ok = server_frame(OP_TEXT, b"x" * 60, fin=False) + server_frame(OP_CONT, b"y" * 40)
    assert FrameParser(max_size=100).feed(ok) == [(OP_TEXT, b"x" * 60 + b"y" * 40)]
    bad = server_frame(OP_TEXT, b"x" * 60, fin=False) + server_frame(OP_CONT, b"y" * 41)
    assert _error(bad, max_size=100).code == 1009


def test_frame_error_default_code() -> None:
    assert FrameError("x").code == 1002
    assert FrameError("x", 1009).code == 1009
    assert str(FrameError("boom")) == "boom"


# --- incremental feeding -------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 300])
def test_feed_byte_by_byte(n: int) -> None:
    payload = payload_of(n, 5)
    data = (
        server_frame(OP_TEXT, payload)
        + server_frame(OP_BINARY, b"ab", fin=False)
        + server_frame(OP_PING, b"p")
        + server_frame(OP_CONT, payload)
    )
    parser = FrameParser()
    out = []
    for i in range(len(data)):
        got = parser.feed(data[i : i + 1])
        out.extend(got)
        if i < len(data) - 1:
            assert (OP_BINARY, b"ab" + payload) not in got
    assert out == [(OP_TEXT, payload), (OP_PING, b"p"), (OP_BINARY, b"ab" + payload)]


@pytest.mark.parametrize("n", [65535, 65536, 70000])
def test_feed_large_frame_header_byte_by_byte_then_chunks(n: int) -> None:
    payload = payload_of(n, 6)
    data = server_frame(OP_BINARY, payload) + server_frame(OP_TEXT, b"tail")
    parser = FrameParser()
    header_len = 4 if n < 65536 else 10
    for i in range(header_len):
        assert parser.feed(data[i : i + 1]) == []
    out = []
    pos = header_len
    while pos < len(data):
        out.extend(parser.feed(data[pos : pos + 997]))
        pos += 997
    assert out == [(OP_BINARY, payload), (OP_TEXT, b"tail")]


def test_feed_empty_bytes() -> None:
    parser = FrameParser()
    assert parser.feed(b"") == []
    assert parser.feed(b"\x81") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\x01a") == [(OP_TEXT, b"a")]


# --- differential property test against websocket-client -----------------------------------


class _Exhausted(Exception):
    pass


def _recv_from(chunks: list[bytes]):
    it = iter(chunks)

    def recv(_bufsize: int) -> bytes:
        try:
            return next(it)
        except StopIteration:
            raise _Exhausted from None

    return recv


def websocket_client_parse(chunks: list[bytes]) -> list[tuple[int, bytes]]:
    """Parses with websocket-client's own frame_buffer + continuous_frame, the way
    ``WebSocket.recv_data_frame`` combines them."""
    buf = frame_buffer(_recv_from(chunks), skip_utf8_validation=True)
    cont = continuous_frame(fire_cont_frame=False, skip_utf8_validation=True)
    out: list[tuple[int, bytes]] = []
    while True:
        try:
            frame = buf.recv_frame()
        except _Exhausted:
            assert buf.needs_header() and buf.recv_buffer in ([], [b""])
            return out
        if frame.opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT):
            cont.validate(frame)
            cont.add(frame)
            if cont.is_fire(frame):
                opcode, whole = cont.extract(frame)
                out.append((opcode, bytes(whole.data)))
        else:
            out.append((frame.opcode, bytes(frame.data)))


def _sized_payload(data: st.DataObject, limit: int = 70000) -> bytes:
    n = data.draw(st.sampled_from([n for n in LENGTHS if n <= limit]) | st.integers(0, limit))
    return payload_of(n, data.draw(st.integers(0, 3)))


def _control(data: st.DataObject) -> bytes:
    opcode = data.draw(st.sampled_from([OP_PING, OP_PONG, OP_CLOSE]))
    if opcode == OP_CLOSE:
        reason = data.draw(st.text("abcxyz ", max_size=20)).encode()
        payload = data.draw(st.sampled_from([b"", encode_close_payload(1000, "") + reason]))
    else:
        payload = _sized_payload(data, 125)
    return server_frame(opcode, payload)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_same_messages_as_websocket_client(data: st.DataObject) -> None:
    stream = b""
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["data", "control", "fragmented"]))
        if kind == "control":
            stream += _control(data)
        elif kind == "data":
            stream += server_frame(
                data.draw(st.sampled_from([OP_TEXT, OP_BINARY])), _sized_payload(data)
            )
        else:
            opcode = data.draw(st.sampled_from([OP_TEXT, OP_BINARY]))
            parts = [_sized_payload(data) for _ in range(data.draw(st.integers(2, 4)))]
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                stream += server_frame(opcode if i == 0 else OP_CONT, part, fin=last)
                if not last and data.draw(st.booleans()):
                    stream += _control(data)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=12))))
    if data.draw(st.booleans()):
        cuts += list(range(1, min(12, len(stream))))  # byte by byte through the first header
        cuts = sorted(set(cuts))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    parser = FrameParser()
    ours: list[tuple[int, bytes]] = []
    for chunk in chunks:
        ours.extend(parser.feed(chunk))
    assert [(op, bytes(p)) for op, p in ours] == websocket_client_parse(chunks)
