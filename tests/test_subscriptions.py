"""deriv_sdk.subscriptions: stream sharing and routing, without any I/O."""

from __future__ import annotations

import threading

import pytest

from deriv_sdk.errors import APIError
from deriv_sdk.subscriptions import NEW_STREAM, Stream, Subscription, SubscriptionRegistry

TICKS = {"ticks": "R_50", "subscribe": 1}


class Forgets(list):
    def __call__(self, stream: Stream) -> None:
        self.append(stream)


def listener(message: dict) -> None:
    pass


@pytest.fixture
def forgets() -> Forgets:
    return Forgets()


@pytest.fixture
def reg(forgets: Forgets) -> SubscriptionRegistry:
    return SubscriptionRegistry(forgets)


def test_join_new_key_is_new_stream(reg: SubscriptionRegistry) -> None:
    request = {**TICKS, "req_id": 4}
    sub, replay = reg.join(request, listener)
    assert replay is NEW_STREAM
    assert isinstance(sub, Subscription)
    assert sub.active and sub.id is None
    assert sub.request is request and sub.listener is listener
    (stream,) = reg.streams()
    assert stream.request == TICKS  # without req_id
    assert stream.type == "ticks"
    assert stream.subs == (sub,)
    assert not stream.first.is_set()


def test_join_shared_key_replays(reg: SubscriptionRegistry) -> None:
    a, replay_a = reg.join(TICKS, listener)
    # Same stream: req_id, passthrough and key order do not matter.
    b, replay_b = reg.join({"req_id": 9, "subscribe": 1, "ticks": "R_50"}, listener)
    assert replay_a is NEW_STREAM
    assert replay_b is None  # first reply still awaited
    (stream,) = reg.streams()
    assert stream.subs == (a, b)
    first = {"msg_type": "tick", "tick": {"quote": 1}, "subscription": {"id": "s1"}}
    reg.first_reply(stream, first, "s1")
    assert stream.first.is_set()
    assert a.id == b.id == "s1"
    c, replay_c = reg.join({**TICKS, "passthrough": {"x": 1}}, listener)
    assert replay_c is first
    update = {"msg_type": "tick", "tick": {"quote": 2}}
    assert reg.record(stream, update) == (a, b, c)
    _, replay_d = reg.join(TICKS, listener)
    assert replay_d is update


def test_join_different_key_is_another_stream(reg: SubscriptionRegistry) -> None:
    reg.join(TICKS, listener)
    _, replay = reg.join({"ticks": "R_100", "subscribe": 1}, listener)
    assert replay is NEW_STREAM
    assert len(reg.streams()) == 2


def test_bind_and_by_req(reg: SubscriptionRegistry) -> None:
    reg.join(TICKS, listener)
    (stream,) = reg.streams()
    reg.bind(stream, 5)
    assert reg.by_req == {5: stream}
    assert stream.req_id == 5
    reg.bind(stream, 8)  # re-subscribed under a new req_id
    assert reg.by_req == {8: stream}
    assert stream.req_id == 8


def test_release_one_of_two_keeps_the_stream(reg: SubscriptionRegistry, forgets: Forgets) -> None:
    a, _ = reg.join(TICKS, listener)
    b, _ = reg.join(TICKS, listener)
    (stream,) = reg.streams()
    reg.bind(stream, 1)
    reg.first_reply(stream, {"msg_type": "tick"}, "s1")
    a.forget()
    assert not a.active and b.active
    assert reg.streams() == [stream]
    assert reg.by_req == {1: stream}
    assert reg.record(stream, {"msg_type": "tick"}) == (b,)
    assert forgets == []
    a.forget()  # idempotent
    assert b.active and forgets == []
    b.forget()
    assert not b.active
    assert forgets == [stream]
    assert reg.streams() == [] and reg.by_req == {}
    assert reg.was_ours(1)
    b.forget()
    reg.release(a)
    assert forgets == [stream]  # once only


def test_release_last_without_server_id_sends_no_forget(
    reg: SubscriptionRegistry, forgets: Forgets
) -> None:
    sub, _ = reg.join(TICKS, listener)
    (stream,) = reg.streams()
    reg.bind(stream, 3)
    sub.forget()  # before the first reply: the server has no id to forget
    assert forgets == []
    assert reg.streams() == [] and reg.by_req == {}
    _, replay = reg.join(TICKS, listener)
    assert replay is NEW_STREAM  # the key is free again
    assert reg.streams()[0] is not stream


def test_end_marks_handles_inactive(reg: SubscriptionRegistry, forgets: Forgets) -> None:
    a, _ = reg.join(TICKS, listener)
    b, _ = reg.join(TICKS, listener)
    (stream,) = reg.streams()
    reg.bind(stream, 2)
    reg.first_reply(stream, {}, "s1")
    assert reg.end(stream) == [a, b]
    assert not a.active and not b.active
    assert stream.subs == ()
    assert reg.streams() == [] and reg.by_req == {}
    assert reg.was_ours(2) and not reg.was_ours(3)
    a.forget()  # already ended: no forget is sent
    assert forgets == []
    assert reg.end(stream) == []


def test_fail_marks_handles_inactive_and_records_error(
    reg: SubscriptionRegistry, forgets: Forgets
) -> None:
    a, _ = reg.join(TICKS, listener)
    (stream,) = reg.streams()
    reg.bind(stream, 6)
    error = APIError("MarketIsClosed", "closed", req_id=6)
    assert reg.fail(stream, error) == [a]
    assert not a.active
    assert stream.error is error
    assert stream.first.is_set()
    assert reg.by_req == {} and reg.streams() == []
    assert forgets == []
    _, replay = reg.join(TICKS, listener)
    assert replay is NEW_STREAM


def test_first_reply_clears_error(reg: SubscriptionRegistry) -> None:
    reg.join(TICKS, listener)
    (stream,) = reg.streams()
    stream.error = RuntimeError("old")
    reg.first_reply(stream, {"a": 1}, "s2")
    assert (stream.error, stream.id, stream.last_message) == (None, "s2", {"a": 1})


def test_find_by_ids_and_types(reg: SubscriptionRegistry) -> None:
    reg.join(TICKS, listener)
    reg.join({"proposal": 1, "amount": 10, "subscribe": 1}, listener)
    reg.join({"ticks_history": "R_50", "style": "candles", "subscribe": 1}, listener)
    reg.join({"exchange_rates": 1, "base_currency": "USD", "subscribe": 1}, listener)
    ticks, proposal, candles, rates = reg.streams()
    for stream, sub_id in zip(reg.streams(), ["t1", "p1", "c1", "x1"], strict=True):
        reg.first_reply(stream, {}, sub_id)
    assert reg.find(ids=["p1"]) == [proposal]
    assert reg.find(ids=["x1", "t1"]) == [ticks, rates]
    assert reg.find(types=["ticks"]) == [ticks]
    assert reg.find(types=["candles", "proposal"]) == [proposal, candles]
    assert reg.find(ids=["c1"], types=["ticks"]) == [ticks, candles]
    assert reg.find(ids=["nope"], types=["balance"]) == []
    assert reg.find() == []
    assert rates.type is None


def test_find_does_not_match_missing_id(reg: SubscriptionRegistry) -> None:
    reg.join({"exchange_rates": 1, "subscribe": 1}, listener)
    assert reg.find(ids=["s"]) == []  # no server id yet
    assert reg.find(types=["exchange_rates"]) == []  # no forget_all type


def test_unbind_all(reg: SubscriptionRegistry) -> None:
    a, _ = reg.join(TICKS, listener)
    b, _ = reg.join({"proposal": 1, "subscribe": 1}, listener)
    s1, s2 = reg.streams()
    reg.bind(s1, 1)
    reg.bind(s2, 2)
    reg.unbind_all()
    assert reg.by_req == {}
    assert s1.req_id is None and s2.req_id is None
    assert reg.was_ours(1) and reg.was_ours(2)
    assert reg.streams() == [s1, s2]  # kept, waiting to be re-subscribed
    assert a.active and b.active
    reg.bind(s1, 10)
    assert reg.by_req == {10: s1}


def test_record_returns_current_handles(reg: SubscriptionRegistry) -> None:
    a, _ = reg.join(TICKS, listener)
    (stream,) = reg.streams()
    assert reg.record(stream, {"n": 1}) == (a,)
    b, _ = reg.join(TICKS, listener)
    assert reg.record(stream, {"n": 2}) == (a, b)
    assert stream.last_message == {"n": 2}
    a.forget()
    assert reg.record(stream, {"n": 3}) == (b,)


def test_subscription_repr(reg: SubscriptionRegistry) -> None:
    sub, _ = reg.join({"ticks": "R_50"}, listener)
    assert repr(sub) == '<Subscription {"ticks":"R_50"} id=None active>'
    reg.first_reply(reg.streams()[0], {}, "abc")
    sub.forget()
    assert repr(sub) == '<Subscription {"ticks":"R_50"} id=\'abc\' ended>'


def test_join_racing_the_last_release_gets_a_live_handle(
    reg: SubscriptionRegistry, forgets: Forgets
) -> None:
    # release() ends the stream in the same lock section that drops its last handle, so a
    # join() racing it either shares the stream before or starts a new one after; its
    # handle is never born dead. Hammer it from two threads.
    dead: list[Subscription] = []
    stop = threading.Event()

    def releaser() -> None:
        while not stop.is_set():
            sub, replay = reg.join(TICKS, listener)
            if replay is NEW_STREAM:
                (stream,) = [s for s in reg.streams() if s is sub._stream] or [sub._stream]
                reg.first_reply(stream, {"msg_type": "tick"}, "s1")
            sub.forget()

    worker = threading.Thread(target=releaser)
    worker.start()
    try:
        for _ in range(2000):
            sub, _ = reg.join(TICKS, listener)
            if not sub.active:
                dead.append(sub)
            sub.forget()
    finally:
        stop.set()
        worker.join(10)
    assert dead == []
