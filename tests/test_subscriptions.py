"""deriv_sdk.subscriptions: stream sharing and routing, without any I/O."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from deriv_sdk import subscriptions
from deriv_sdk.errors import APIError, InvalidStateError
from deriv_sdk.subscriptions import Stream, Subscription, SubscriptionRegistry

TICKS = {"ticks": "R_50", "subscribe": 1}


class Forgets(list[Stream]):
    def __call__(self, stream: Stream) -> None:
        self.append(stream)


class Replays(list[tuple[Subscription, dict[str, Any]]]):
    def __call__(self, sub: Subscription, seq: int, message: dict[str, Any]) -> None:
        self.append((sub, message))
        self.seqs = [*getattr(self, "seqs", []), seq]


def listener(message: dict[str, Any]) -> None:
    pass


def on_end(sub: Subscription) -> None:
    pass


@pytest.fixture
def forgets() -> Forgets:
    return Forgets()


@pytest.fixture
def reg(forgets: Forgets) -> SubscriptionRegistry:
    return SubscriptionRegistry(forgets)


def join(
    reg: SubscriptionRegistry, request: dict[str, Any] = TICKS, end: Any = None
) -> tuple[Subscription, bool, Replays]:
    replays = Replays()
    sub, new = reg.join(request, listener, end, replays)
    return sub, new, replays


def test_join_new_key_is_new_stream(reg: SubscriptionRegistry) -> None:
    request = {**TICKS, "req_id": 4}
    sub, new, replays = join(reg, request)
    assert new and replays == []
    assert isinstance(sub, Subscription)
    assert sub.active and sub.id is None and sub.error is None
    assert sub.request is request and sub.listener is listener
    (stream,) = reg.streams()
    assert stream.request == TICKS  # without req_id
    assert stream.type == "ticks"
    assert stream.subs == (sub,)
    assert not stream.first.is_set() and not stream.started


def test_join_shared_key_replays_the_latest_message(reg: SubscriptionRegistry) -> None:
    a, new_a, _ = join(reg)
    # Same stream: req_id, passthrough and key order do not matter.
    b, new_b, replays_b = join(reg, {"req_id": 9, "subscribe": 1, "ticks": "R_50"})
    assert new_a and not new_b
    assert replays_b == []  # first reply still awaited: b gets it with the others
    (stream,) = reg.streams()
    assert stream.subs == (a, b)
    first = {"msg_type": "tick", "tick": {"quote": 1}, "subscription": {"id": "s1"}}
    assert reg.record(stream, first, "s1")[0] == (a, b)
    assert stream.first.is_set() and stream.started
    assert a.id == b.id == "s1"
    c, _, replays_c = join(reg, {**TICKS, "passthrough": {"x": 1}})
    assert replays_c == [(c, first)]
    update = {"msg_type": "tick", "tick": {"quote": 2}}
    assert reg.record(stream, update, "s1")[0] == (a, b, c)
    d, _, replays_d = join(reg)
    assert replays_d == [(d, update)]


def test_the_replay_carries_the_seq_of_the_message(reg: SubscriptionRegistry) -> None:
    # Regression (stale quotes): a joining handle's replay could be delivered after newer
    # messages. Each message of a stream now has a seq; the replay carries the latest's, and
    # the dispatch thread delivers a message to a handle only above the handle's last seq.
    join(reg)
    (stream,) = reg.streams()
    assert reg.record(stream, {"n": 1}, "s1")[1] == 1
    assert reg.record(stream, {"n": 2}, "s1")[1] == 2
    _, _, replays = join(reg)
    assert replays.seqs == [2] and replays[0][1] == {"n": 2}
    assert stream.latest == (2, {"n": 2})


def test_a_joining_handle_is_in_subs_before_the_replay_is_read(
    reg: SubscriptionRegistry,
) -> None:
    # The order that makes the lock-free record safe: join() adds the handle to subs, then
    # reads latest (the reader writes latest, then reads subs).
    join(reg)
    (stream,) = reg.streams()
    reg.record(stream, {"n": 1}, "s1")
    seen: list[bool] = []

    def replay(sub: Subscription, seq: int, message: dict[str, Any]) -> None:
        seen.append(sub in stream.subs)

    reg.join(TICKS, listener, None, replay)
    assert seen == [True]


def test_join_different_key_is_another_stream(reg: SubscriptionRegistry) -> None:
    join(reg)
    _, new, _ = join(reg, {"ticks": "R_100", "subscribe": 1})
    assert new
    assert len(reg.streams()) == 2


def test_bind_and_by_req(reg: SubscriptionRegistry) -> None:
    join(reg)
    (stream,) = reg.streams()
    assert reg.bind(stream, 5)
    assert reg.by_req == {5: stream}
    assert stream.req_id == 5
    assert reg.bind(stream, 8)  # re-subscribed under a new req_id
    assert reg.by_req == {8: stream}
    assert stream.req_id == 8


def test_release_one_of_two_keeps_the_stream(reg: SubscriptionRegistry, forgets: Forgets) -> None:
    a, _, _ = join(reg)
    b, _, _ = join(reg)
    (stream,) = reg.streams()
    reg.bind(stream, 1)
    reg.record(stream, {"msg_type": "tick"}, "s1")
    a.forget()
    assert not a.active and b.active
    assert reg.streams() == [stream]
    assert reg.by_req == {1: stream}
    assert reg.record(stream, {"msg_type": "tick"}, "s1")[0] == (b,)
    assert forgets == []
    a.forget()  # idempotent
    assert b.active and forgets == []
    b.forget()
    assert not b.active
    assert forgets == [stream]
    assert reg.streams() == [] and reg.by_req == {}
    assert reg.was_ours(1)
    assert not reg.claim_forget("s1")  # the abandoned id is forgotten once only
    b.forget()
    reg.release(a)
    assert forgets == [stream]  # once only


def test_release_last_without_server_id_sends_no_forget(
    reg: SubscriptionRegistry, forgets: Forgets
) -> None:
    sub, _, _ = join(reg)
    (stream,) = reg.streams()
    reg.bind(stream, 3)
    sub.forget()  # before the first reply: the server has no id to forget
    assert forgets == []
    assert reg.streams() == [] and reg.by_req == {}
    _, new, _ = join(reg)
    assert new  # the key is free again
    assert reg.streams()[0] is not stream


def test_end_of_a_started_stream_returns_the_on_end_handles(
    reg: SubscriptionRegistry, forgets: Forgets
) -> None:
    a, _, _ = join(reg, end=on_end)
    b, _, _ = join(reg)  # no on_end: nothing to call for it
    (stream,) = reg.streams()
    reg.bind(stream, 2)
    reg.record(stream, {}, "s1")
    error = APIError("MarketIsClosed", "closed")
    assert reg.end(stream, error) == [a]
    assert not a.active and not b.active
    assert a.error is error and b.error is error
    assert stream.subs == ()
    assert reg.streams() == [] and reg.by_req == {}
    assert reg.was_ours(2) and not reg.was_ours(3)
    a.forget()  # already ended: no forget is sent
    assert forgets == []
    assert reg.end(stream) == []  # once only


def test_end_of_a_stream_that_never_answered_calls_no_on_end(reg: SubscriptionRegistry) -> None:
    # The subscriber raises the refusal itself; it never held the handle.
    a, _, _ = join(reg, end=on_end)
    (stream,) = reg.streams()
    reg.bind(stream, 6)
    error = APIError("InvalidSymbol", "no", req_id=6)
    assert reg.end(stream, error) == []
    assert not a.active and stream.error is error and stream.first.is_set()
    _, new, _ = join(reg)
    assert new


def test_a_refused_resubscribe_ends_with_on_end(reg: SubscriptionRegistry) -> None:
    a, _, _ = join(reg, end=on_end)
    (stream,) = reg.streams()
    reg.bind(stream, 1)
    reg.record(stream, {}, "s1")
    reg.unbind_all()  # the link dropped
    assert a.active and not stream.first.is_set()
    reg.bind(stream, 2)  # re-subscribed: refused
    assert reg.end(stream, APIError("AuthorizationRequired", "log in")) == [a]


def test_record_of_the_first_reply_sets_the_id_and_clears_the_error(
    reg: SubscriptionRegistry,
) -> None:
    join(reg)
    (stream,) = reg.streams()
    stream.error = RuntimeError("old")
    reg.record(stream, {"a": 1}, "s2")
    assert (stream.error, stream.id, stream.latest) == (None, "s2", (1, {"a": 1}))
    reg.record(stream, {"a": 2}, "s2")
    assert stream.id == "s2" and stream.latest == (2, {"a": 2})


def test_find_by_ids_and_types(reg: SubscriptionRegistry) -> None:
    join(reg)
    join(reg, {"proposal": 1, "amount": 10, "subscribe": 1})
    join(reg, {"ticks_history": "R_50", "style": "candles", "subscribe": 1})
    join(reg, {"exchange_rates": 1, "base_currency": "USD", "subscribe": 1})
    ticks, proposal, candles, rates = reg.streams()
    for stream, sub_id in zip(reg.streams(), ["t1", "p1", "c1", "x1"], strict=True):
        reg.record(stream, {}, sub_id)
    assert reg.find(ids=["p1"]) == [proposal]
    assert reg.find(ids=["x1", "t1"]) == [ticks, rates]
    assert reg.find(types=["ticks"]) == [ticks]
    assert reg.find(types=["candles", "proposal"]) == [proposal, candles]
    assert reg.find(ids=["c1"], types=["ticks"]) == [ticks, candles]
    assert reg.find(ids=["nope"], types=["balance"]) == []
    assert reg.find() == []
    assert rates.type is None


def test_find_does_not_match_missing_id(reg: SubscriptionRegistry) -> None:
    join(reg, {"exchange_rates": 1, "subscribe": 1})
    assert reg.find(ids=["s"]) == []  # no server id yet
    assert reg.find(types=["exchange_rates"]) == []  # no forget_all type


def test_unbind_all(reg: SubscriptionRegistry) -> None:
    a, _, _ = join(reg)
    b, _, _ = join(reg, {"proposal": 1, "subscribe": 1})
    s1, s2 = reg.streams()
    reg.bind(s1, 1)
    reg.bind(s2, 2)
    reg.record(s1, {}, "x")
    reg.unbind_all()
    assert reg.by_req == {}
    assert s1.req_id is None and s2.req_id is None
    assert not s1.first.is_set()  # awaits the re-subscribe's answer
    # Nothing of the old link can arrive on the next one: its ids are free again.
    assert not reg.was_ours(1) and not reg.reserved(1) and not reg.reserved(2)
    assert reg.streams() == [s1, s2]  # kept, waiting to be re-subscribed
    assert a.active and b.active
    reg.bind(s1, 10)
    assert reg.by_req == {10: s1}


def test_close_ends_everything_and_refuses_joins(reg: SubscriptionRegistry) -> None:
    a, _, _ = join(reg, end=on_end)
    (stream,) = reg.streams()
    reg.record(stream, {}, "s1")
    assert reg.close(None) == [a]
    assert not a.active and a.error is None
    with pytest.raises(InvalidStateError):
        join(reg)


def test_remembered_ids_are_bounded(
    reg: SubscriptionRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: the table of forgotten stream ids grew without bound (and was checked
    # then added from three threads without a lock).
    monkeypatch.setattr(subscriptions, "MAX_REMEMBERED", 10)
    for i in range(100):
        assert reg.claim_forget(f"id{i}")
    assert len(reg._forgotten_ids) == 10
    assert reg.claim_forget("id0")  # long forgotten: may be claimed again
    assert not reg.claim_forget("id99")


def test_claim_forget_from_many_threads_claims_once(reg: SubscriptionRegistry) -> None:
    wins: list[str] = []
    barrier = threading.Barrier(3)

    def claim() -> None:
        barrier.wait()
        for i in range(500):
            if reg.claim_forget(f"s{i}"):
                wins.append(f"s{i}")

    threads = [threading.Thread(target=claim) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(wins) == sorted(f"s{i}" for i in range(500))


def test_record_returns_current_handles(reg: SubscriptionRegistry) -> None:
    a, _, _ = join(reg)
    (stream,) = reg.streams()
    assert reg.record(stream, {"n": 1}, "s")[0] == (a,)
    b, _, _ = join(reg)
    assert reg.record(stream, {"n": 2}, "s")[0] == (a, b)
    assert stream.latest == (2, {"n": 2})
    a.forget()
    assert reg.record(stream, {"n": 3}, "s")[0] == (b,)


def test_subscription_repr(reg: SubscriptionRegistry) -> None:
    sub, _, _ = join(reg, {"ticks": "R_50"})
    assert repr(sub) == '<Subscription {"ticks":"R_50"} id=None active>'
    reg.record(reg.streams()[0], {}, "abc")
    sub.forget()
    assert repr(sub) == '<Subscription {"ticks":"R_50"} id=\'abc\' ended>'


def test_join_racing_the_last_release_gets_a_live_handle(reg: SubscriptionRegistry) -> None:
    # release() ends the stream in the same lock section that drops its last handle, so a
    # join() racing it either shares the stream before or starts a new one after; its
    # handle is never born dead. Hammer it from two threads.
    dead: list[Subscription] = []
    stop = threading.Event()

    def releaser() -> None:
        while not stop.is_set():
            sub, new, _ = join(reg)
            if new:
                reg.record(sub._stream, {"msg_type": "tick"}, "s1")
            sub.forget()

    worker = threading.Thread(target=releaser)
    worker.start()
    try:
        for _ in range(2000):
            sub, _, _ = join(reg)
            if not sub.active:
                dead.append(sub)
            sub.forget()
    finally:
        stop.set()
        worker.join(10)
    assert dead == []


BUY = {"buy": "1", "price": 10, "parameters": {"amount": 10}, "subscribe": 1}
BUY_REPLY = {"msg_type": "buy", "buy": {"contract_id": 42}, "subscription": {"id": "b1"}}
POC = {"proposal_open_contract": 1, "contract_id": 42, "subscribe": 1}


def test_a_buy_without_its_first_reply_is_never_sent_again(reg: SubscriptionRegistry) -> None:
    # Regression: a drop before the buy's answer left the buy as the stream's request, and the
    # restore sent it again (a second contract) while the caller was told it had failed.
    sub, new, _ = join(reg, BUY)
    (stream,) = reg.streams()
    assert new and stream.request is not None
    reg.bind(stream, 3)
    reg.unbind_all()
    assert stream.request is None  # the restore ends it instead
    assert sub.active


def test_a_followed_buy_is_keyed_as_what_it_follows(reg: SubscriptionRegistry) -> None:
    # Regression: after a reconnect the followed buy and the user's own subscription of the
    # same contract were two identical subscribes on one link: Deriv refuses the second.
    sub, _, _ = join(reg, BUY)
    (stream,) = reg.streams()
    reg.bind(stream, 3)
    reg.record(stream, BUY_REPLY, "b1")
    assert stream.request == POC
    own, new, replays = join(reg, POC)
    assert not new and own._stream is stream  # shared, not a second subscribe
    assert replays == []  # the buy's own reply is not what a contract's listener expects
    update = {"msg_type": "proposal_open_contract", "proposal_open_contract": {"contract_id": 42}}
    _, seq = reg.record(stream, update, "b1")
    late, _, replays = join(reg, POC)
    assert [m for _, m in replays] == [update] and replays.seqs == [seq]
    assert sub.active and own.active and late.active
