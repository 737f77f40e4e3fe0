"""docs/ is kept true by these tests wherever a machine can check it.

- docs/api.md: the exported names are ``deriv_sdk.__all__``; every ``from deriv_sdk... import``
  in docs/ resolves; the constructor signatures (``Connection``, ``Connection.options``,
  ``RestClient``, ``LocalServer``) and every method signature equal ``inspect.signature``;
  the attributes named exist and the public ones are all named; the CLI's commands/options.
- docs/errors.md: the exception tree equals the class hierarchy (and the README's tree its
  exported part); the attribute table equals the instances' attributes.
- docs/events.md: the event table equals the classes' slots and properties.
- docs/threads.md: the thread names equal the names the source gives threads, and a run that
  starts every kind of thread starts only documented ones.
- docs/retries.md: the retry table equals ``RetryPolicy.allows``.
- Prose that a machine can check: the state rules of the calls (``InvalidStateError`` or
  ``ConnectionClosedError``), ``sub.request``, ``url=`` with ``endpoint=``, the infinite
  timeouts, the close reasons, and the numbers (the 2 ms hold, the close waits).
- Every link to a docs page (README, docs/, docstrings) points to a file (and heading) that
  exists.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

import deriv_sdk
from deriv_sdk import (
    APIError,
    CloseEvent,
    ConnectError,
    Connection,
    ConnectionClosedError,
    DerivError,
    ErrorEvent,
    Event,
    InvalidStateError,
    MessageEvent,
    OpenEvent,
    ProtocolError,
    RequestTimeoutError,
    RestClient,
    RestError,
    Subscription,
    cli,
    reader,
    runner,
)
from deriv_sdk.backoff import Backoff
from deriv_sdk.cli import _common_options, build_parser
from deriv_sdk.events import EVENT_TYPES
from deriv_sdk.lifecycle import RetryPolicy
from deriv_sdk.streams import RestoreIncomplete
from deriv_sdk.testing import LocalServer
from deriv_sdk.testing import command as server_command
from tests.docs_support import (
    DOCS,
    FENCE,
    ROOT,
    SPAN,
    abort_reasons,
    anchors,
    assert_same_signature,
    bullets,
    documented_threads,
    hierarchy,
    page,
    pattern,
    prose,
    section,
    source_threads,
    table,
    tree,
    tree_block,
)

# --------------------------------------------------------------------------- signatures


SIGNATURE_BLOCKS = {
    "Connection": Connection,
    "Connection.options": Connection.options,
    "RestClient": RestClient,
    "LocalServer": LocalServer,
}


def test_constructor_signatures_and_defaults_equal_the_code() -> None:
    found = {}
    for lang, code in FENCE.findall(page("api.md")):
        match = re.fullmatch(r"([A-Za-z_][\w.]*)\((.*)\)", code.strip(), re.S)
        if lang == "python" and match:
            found[match[1]] = code.strip()
    assert set(found) == set(SIGNATURE_BLOCKS)
    for name, text in found.items():
        assert_same_signature(name, text, SIGNATURE_BLOCKS[name])


def instances() -> dict[str, tuple[type, Any]]:
    conn = Connection(url="ws://127.0.0.1:9/")  # never connected: no thread, no socket
    return {
        "conn": (Connection, conn),
        "rest": (RestClient, RestClient("app", "token")),
        "sub": (Subscription, None),
        "server": (LocalServer, LocalServer()),
    }


def test_every_public_method_is_documented_with_its_signature() -> None:
    documented: dict[str, dict[str, str]] = {prefix: {} for prefix in instances()}
    for item in bullets(page("api.md")):
        first = SPAN.match(item)
        match = first and re.fullmatch(r"(conn|rest|sub|server)\.(\w+)(\(.*\))", first[1])
        if match:
            assert match[2] not in documented[match[1]], f"{first[1]} documented twice"
            documented[match[1]][match[2]] = match[2] + match[3]
    for prefix, (cls, _) in instances().items():
        public = {n for n, v in vars(cls).items() if inspect.isfunction(v) and n[0] != "_"}
        assert set(documented[prefix]) == public, cls.__name__
        for name, text in documented[prefix].items():
            assert_same_signature(f"{prefix}.{name}", text, getattr(cls, name))


def test_attributes_named_exist_and_the_public_ones_are_named() -> None:
    text = page("api.md")
    spans = set(SPAN.findall(text))
    for prefix, (cls, obj) in instances().items():
        named = {m[1] for s in spans if (m := re.fullmatch(rf"{prefix}\.(\w+)", s))}
        for name in named:
            assert hasattr(obj if obj is not None else cls, name), f"{prefix}.{name}"
        public = {n for n, v in vars(cls).items() if isinstance(v, property) and n[0] != "_"}
        public |= {n for n in getattr(cls, "__slots__", ()) if n[0] != "_"}
        if cls in (Connection, RestClient):  # (LocalServer's are in its docstrings)
            public |= {n for n in vars(obj) if n[0] != "_"}
        assert public <= named, f"{cls.__name__}: not documented: {sorted(public - named)}"
    constant = re.compile(r"Connection\.([A-Z]+) = (\d)")
    constants = {m[1]: int(m[2]) for s in spans if (m := constant.fullmatch(s))}
    code = {n: v for n, v in vars(Connection).items() if n.isupper() and isinstance(v, int)}
    assert constants == code


def test_options_keywords_are_connections_settings() -> None:
    item = next(i for i in bullets(page("api.md")) if i.startswith("`**kwargs`"))
    listed = set(SPAN.findall(item.split(": ")[2]))
    init = inspect.signature(Connection.__init__).parameters.values()
    settings = {p.name for p in init if p.kind is p.KEYWORD_ONLY}
    assert listed == settings - {"endpoint", "url", "language", "brand"}
    for name in listed:  # each is accepted, with Connection's default
        Connection.options(**{name: inspect.signature(Connection).parameters[name].default})
    for name in ("app_id", "language", "brand", "no_such_keyword"):
        with pytest.raises(TypeError):
            Connection.options(**{name: "x"})


# --------------------------------------------------------------------------- names


def test_exported_names_are_the_documented_ones() -> None:
    exports = section(page("api.md"), "## What `deriv_sdk` exports")
    named = {n for item in bullets(exports) for n in SPAN.findall(item.split(": ")[0])}
    assert named == set(deriv_sdk.__all__)
    for name in named:
        assert hasattr(deriv_sdk, name), name


def test_every_import_in_the_docs_resolves() -> None:
    imports = re.compile(r"from (deriv_sdk[\w.]*) import (?:\(([\w,\s]+)\)|([\w, ]+))")
    seen = 0
    for path in sorted(DOCS.glob("*.md")):
        for module_name, wrapped, names in imports.findall(path.read_text("utf-8")):
            module = importlib.import_module(module_name)
            for name in filter(None, (n.strip() for n in (wrapped or names).split(","))):
                assert hasattr(module, name), f"{path.name}: from {module_name} import {name}"
                seen += 1
    assert seen >= 5  # the pattern still finds the docs' imports


def test_cli_commands_and_options_are_documented() -> None:
    cli = bullets(section(page("api.md"), "## Command line"))
    listed = next(i for i in cli if i.startswith("Commands"))
    commands = {s.split()[0] for s in SPAN.findall(listed)}
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert commands == set(subparsers.choices or ())
    options = next(i for i in cli if i.startswith("Options"))
    documented = {o for s in SPAN.findall(options) if s[0] == "-" for o in s.split()[0].split("/")}
    actual = {o for a in _common_options()._actions for o in a.option_strings} - {"-h", "--help"}
    assert documented == actual


def test_the_serve_options_and_defaults_are_documented() -> None:
    item = next(i for i in bullets(section(page("api.md"), "## Command line")) if "`serve` is" in i)
    options = re.sub(r"\([^()]*\)", "", item.split("Its options")[1].split("Exit codes")[0])
    documented = {o for s in SPAN.findall(options) if s[0] == "-" for o in s.split("/")}
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    serve = subparsers.choices["serve"]  # type: ignore[index]
    actions = [a for a in serve._actions if a.option_strings and a.dest != "help"]
    assert documented == {o for a in actions for o in a.option_strings}
    fallback = {"tokens": server_command.DEFAULT_TOKEN, "pats": server_command.DEFAULT_PAT}
    for action in actions:
        if action.dest in ("json", "verbose"):
            continue
        option = action.option_strings[0]
        match = re.search(rf"`{option}` \((?:repeatable; )?default `?([^`),;]+)", item)
        default = fallback.get(action.dest, action.default)
        assert match and match[1] == ("none" if default is None else str(default)), option
    assert "`python -m deriv_sdk.testing`" in item  # the same command (tests/test_cli.py)


def test_the_cli_exit_codes_are_documented() -> None:
    item = next(i for i in bullets(section(page("api.md"), "## Command line")) if i[:5] == "Exit ")
    documented = {int(n) for n in re.findall(r"(?:^|, )(\d+) ", item.split(": ", 1)[1])}
    codes = {v for n, v in vars(cli).items() if n.startswith("EXIT_")}
    assert documented == codes
    serve = next(i for i in bullets(page("api.md")) if "`serve` is" in i).split("Exit codes")[1]
    documented = {int(n) for n in re.findall(r"\b(\d) (?:after|for|when)", serve)}
    codes = {v for n, v in vars(server_command).items() if n.startswith("EXIT_")}
    assert documented == codes


# --------------------------------------------------------------------------- errors


def test_the_exception_trees_equal_the_class_hierarchy() -> None:
    assert tree(tree_block(page("errors.md"))) == hierarchy()
    readme = tree(tree_block((ROOT / "README.md").read_text("utf-8")))
    exported = {k: v for k, v in hierarchy().items() if k in deriv_sdk.__all__}
    assert readme == exported


ERROR_SAMPLES: dict[type, tuple[Any, ...]] = {
    DerivError: ("m",),
    APIError: ("Code", "m"),
    ConnectError: ("m",),
    ConnectionClosedError: (),
    RequestTimeoutError: ("m",),
    RestoreIncomplete: ("m",),
    InvalidStateError: ("m",),
    ProtocolError: ("m",),
    RestError: (400, "Code", "m"),
}


def test_the_error_attributes_table_equals_the_instances() -> None:
    classes = {cls.__name__: cls for cls in ERROR_SAMPLES}
    assert set(classes) == set(hierarchy()), "a new exception class: add it to ERROR_SAMPLES"
    rows = table(page("errors.md"), "class")
    assert {SPAN.findall(row[0])[0] for row in rows} == set(classes)
    for row in rows:
        cls = classes[SPAN.findall(row[0])[0]]
        without_asides = re.sub(r"\([^()]*\)", "", row[2])
        documented = {s for s in SPAN.findall(without_asides) if s.isidentifier()}
        instance = cls(*ERROR_SAMPLES[cls])
        assert documented == {n for n in vars(instance) if n[0] != "_"}, cls.__name__


# --------------------------------------------------------------------------- events


def test_the_event_table_equals_the_classes() -> None:
    samples = {
        Event: Event("open", None),
        OpenEvent: OpenEvent(None),
        MessageEvent: MessageEvent(None, {}, b"{}"),
        CloseEvent: CloseEvent(None, 1000, "", True, False),
        ErrorEvent: ErrorEvent(None, ValueError("x")),
    }
    rows = table(page("events.md"), "type")
    classes = {cls.__name__: cls for cls in samples}
    assert {SPAN.findall(row[1])[0] for row in rows} == set(classes)
    types = set()
    for row in rows:
        cls = classes[SPAN.findall(row[1])[0]]
        documented = set(re.findall(r"`(\w+)`:", row[2]))
        own = {n for n in cls.__dict__.get("__slots__", ()) if n[0] != "_"}
        own |= {n for n, v in vars(cls).items() if isinstance(v, property)}
        assert documented == own, cls.__name__
        if cls is not Event:
            types.add(SPAN.findall(row[0])[0])
            assert samples[cls].type == SPAN.findall(row[0])[0]
    assert types == set(EVENT_TYPES)


# --------------------------------------------------------------------------- threads


def test_thread_names_in_the_docs_are_the_sources() -> None:
    assert documented_threads() == source_threads()


def test_a_run_starts_only_documented_threads_and_all_of_them() -> None:
    """Every kind of thread: a host name (resolver), listeners (dispatch), keepalive, a drop
    and a reconnect (restore), a REST call (its deadline), the server's. Names are read in
    each new thread (``threading.setprofile``) and from snapshots (websockets renames its
    reader after start)."""
    seen: set[str] = set()

    def first_call(frame: Any, event: str, arg: Any) -> None:
        seen.add(threading.current_thread().name)
        sys.setprofile(None)

    def snapshot(_: Any = None) -> None:
        seen.update(t.name for t in threading.enumerate())

    reopened = threading.Event()
    pong = threading.Event()
    threading.setprofile(first_call)
    try:
        with LocalServer(tick_interval=0.05) as server:
            url = f"ws://localhost:{server.port}/websockets/v3?app_id=1089"
            conn = Connection(url=url, keepalive_interval=0.05, reconnect_delay=0.01)
            conn.on("open", lambda e: (snapshot(), e.reconnected and reopened.set()))
            conn.on("message", lambda e: e.msg_type == "ping" and (snapshot(), pong.set()))
            with conn:
                assert pong.wait(10)
                server.drop()
                assert reopened.wait(10)
            rest_url = server.rest_url.replace("127.0.0.1", "localhost")
            assert RestClient("app", "token", base_url=rest_url).health()
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
    ours = {name for name in seen if name.startswith("deriv_sdk-")}
    patterns = {name: pattern(name) for name in documented_threads()}
    for name in ours:
        assert any(p.fullmatch(name) for p in patterns.values()), f"undocumented thread {name}"
    for doc_name, p in patterns.items():
        assert any(p.fullmatch(name) for name in ours), f"{doc_name} never seen: {sorted(ours)}"


# --------------------------------------------------------------------------- retries


def _ce(status: int | None = None, cause: BaseException | None = None) -> ConnectError:
    error = ConnectError("cannot connect", status=status)
    error.__cause__ = cause
    return error


RETRY_ROWS: dict[str, list[BaseException]] = {
    "network error, DNS, refused TCP, TLS error, timeout": [
        _ce(),
        _ce(cause=ConnectionRefusedError()),
        _ce(cause=TimeoutError()),
        _ce(cause=ssl.SSLError()),
    ],
    "the `url=` callable raised": [_ce(cause=RuntimeError("user code"))],
    "handshake answered 5xx": [_ce(500), _ce(502), _ce(503)],
    "handshake answered 429": [_ce(429)],
    "handshake answered 400, 401, 403, 404 or another 4xx": [
        _ce(s) for s in (400, 401, 403, 404, 409, 426)
    ],
    "handshake answered a redirect (3xx)": [_ce(301), _ce(302)],
    "new API: the one-time URL call failed on the network": [_ce(cause=OSError())],
    "new API: the one-time URL call answered 429 or 5xx": [
        _ce(cause=RestError(s, None, "x")) for s in (429, 500, 503)
    ],
    "new API: the one-time URL call answered 400, 401, 403, 404 or another 4xx": [
        _ce(cause=RestError(s, "Unauthorized", "x")) for s in (400, 401, 403, 404, 422)
    ],
    "new API: the one-time URL was used before": [_ce()],
    "Deriv's `InvalidAppID` error": [APIError("InvalidAppID", "Your app_id is invalid.")],
}


def verdict(failure: BaseException, ever_opened: bool) -> str:
    policy = RetryPolicy(True, None, Backoff(1.0, 30.0))
    policy.retry_first = True
    return "retried" if policy.allows(failure, ever_opened) else "final"


def test_the_retry_table_equals_the_retry_policy() -> None:
    rows = table(page("retries.md"), "failure")
    assert {row[0] for row in rows} == set(RETRY_ROWS)
    for label, never_open, once_open in rows:
        for failure in RETRY_ROWS[label]:
            assert verdict(failure, False) == never_open, (label, failure)
            assert verdict(failure, True) == once_open, (label, failure)
    policy = RetryPolicy(True, None, Backoff(1.0, 30.0))
    policy.refuse(APIError("InvalidAppID", ""))  # how the router records it
    assert not policy.allows(None, True)


def test_the_retry_rules_in_prose() -> None:
    text = " ".join(page("retries.md").split())
    assert "so `0` never reconnects" in text
    assert not RetryPolicy(True, 0, Backoff(1.0, 30.0)).allows(None, True)
    assert "A first connection that fails**: not retried" in text
    assert not RetryPolicy(True, None, Backoff(1.0, 30.0)).allows(_ce(503), False)
    assert "`[0, min(reconnect_max_delay, reconnect_delay * 2**n)]`" in text
    backoff = Backoff(1.0, 30.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]


# --------------------------------------------------------------------------- links


def test_every_docs_link_points_to_a_file_that_exists() -> None:
    sources = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    sources += sorted((ROOT / "deriv_sdk").rglob("*.py"))
    mentioned = 0
    for path in sources:
        for target in re.findall(r"\bdocs/[\w./-]*\.md\b", path.read_text("utf-8")):
            assert (ROOT / target).is_file(), f"{path.relative_to(ROOT)}: {target}"
            mentioned += 1
    assert mentioned >= 3


def test_every_markdown_link_resolves() -> None:
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = FENCE.sub("", path.read_text("utf-8"))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"https?://", target):
                continue
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            assert resolved.exists(), f"{path.relative_to(ROOT)}: {target}"
            if anchor:
                assert anchor in anchors(resolved), f"{path.relative_to(ROOT)}: {target}"


def test_the_readme_and_the_docstrings_point_to_the_docs() -> None:
    assert "docs/README.md" in (ROOT / "README.md").read_text("utf-8")
    assert "docs/api.md" in inspect.getdoc(Connection)  # type: ignore[operator]


# --------------------------------------------------------------------------- prose


def test_the_state_rules_in_prose() -> None:
    """Which exception a call raises before ``connect()``, after ``close()`` and after an end
    without ``close()``; ``sub.request``; ``url=`` with ``endpoint=``; ``math.inf``."""
    api, errors = prose("api.md"), prose("errors.md")
    assert (
        "`InvalidStateError` before `connect()` and after `close()`, `ConnectionClosedError` "
        "once the connection has ended (or is ending) without `close()`" in api
    )
    assert "Before `connect()` and after `close()`, every call raises `InvalidStateError`" in errors
    assert "raise `ConnectionClosedError`, in CLOSING and in CLOSED alike" in errors
    assert "the same object, without `subscribe: 1`" in api
    assert "`url` together with an `endpoint` other than the default raises `ValueError`" in api
    assert "with `request_timeout=math.inf` it waits for OPEN with no limit" in api
    assert "`math.inf` blocks until the first open with no limit" in api

    def callback(_: object) -> None:
        raise AssertionError("no callback after a refused send_request()")

    with LocalServer(tick_interval=0.05) as server:
        with pytest.raises(ValueError):
            Connection.options(url=server.options_url, endpoint="elsewhere.example")
        never = Connection(url=server.url)
        with pytest.raises(InvalidStateError):
            never.send_request({"ping": 1}, callback)
        with pytest.raises(InvalidStateError):
            never.request({"ping": 1})
        ended = threading.Event()
        conn = Connection(url=server.url, reconnect=False, request_timeout=math.inf)
        conn.on("close", lambda e: ended.set())
        with conn:
            assert conn.ready_state == Connection.OPEN
            payload = {"ticks": "R_100"}
            sub = conn.subscribe(payload, lambda m: None)
            assert sub.request is payload and payload == {"ticks": "R_100"}
            server.drop()
            assert ended.wait(10) and conn.wait(10)
            calls: list[Callable[[], object]] = [
                lambda: conn.send_request({"ping": 1}, callback),
                lambda: conn.request({"ping": 1}),
                lambda: conn.subscribe({"ticks": "R_50"}, print),
            ]
            for call in calls:
                with pytest.raises(ConnectionClosedError):
                    call()
        with pytest.raises(InvalidStateError):
            conn.send_request({"ping": 1}, callback)


def test_the_close_reasons_are_the_sources() -> None:
    """Every reason the SDK gives a 1006 ``close`` of its own (``Link.abort(reason)`` in the
    source) is listed in docs/events.md, and nothing else is."""
    text = prose("events.md")
    listed = text[text.index("may say why in `reason`") : text.index("else `reason` is empty")]
    documented = {s.strip('"').removesuffix("...") for s in SPAN.findall(listed) if s[0] == '"'}
    assert documented == abort_reasons()


def test_the_numbers_in_prose() -> None:
    threads, events, retries = prose("threads.md"), prose("events.md"), prose("retries.md")
    hold = f"for up to {reader.HOLD * 1000:g} ms"
    assert hold in threads and hold in events
    assert f"at most {reader.HOLD_MAX} messages" in threads
    assert f"(at most {reader.HOLD_MAX} messages)" in events
    assert f"it waits at most {runner.HANDOVER_WAIT:g} s for that" in retries
    assert f"if the send lock or the socket is not free within {runner.CLOSE_SEND_WAIT:g} s" in (
        threads
    )
    assert f"up to {runner.CLOSE_ECHO_WAIT:g} s from the start of `close()`" in threads
