"""deriv_sdk.pending: req_id allocation, resolution, waiters, fail_all and expiry."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from deriv_sdk import pending
from deriv_sdk.errors import ConnectionClosedError, InvalidStateError, RequestTimeoutError
from deriv_sdk.pending import Pending, PendingTable, check_timeout


def test_ids_start_at_one_and_increase() -> None:
    table = PendingTable()
    ids = [table.add().req_id for _ in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    assert len(table) == 5
    assert all(i in table for i in ids)
    assert 6 not in table


def test_caller_req_id_kept_and_skipped_by_counter() -> None:
    table = PendingTable()
    assert table.add(2).req_id == 2
    assert table.add().req_id == 1
    assert table.add().req_id == 3  # 2 is taken
    assert table.add(100).req_id == 100


def test_collision_is_value_error() -> None:
    table = PendingTable()
    table.add(5)
    with pytest.raises(ValueError, match="req_id 5 is in use"):
        table.add(5)
    assert len(table) == 1


@pytest.mark.parametrize("req_id", [True, False, 0, -1, 1.0, "3"])
def test_bad_req_id_is_value_error(req_id: object) -> None:
    table = PendingTable()
    with pytest.raises(ValueError, match="positive int"):
        table.add(req_id)  # type: ignore[arg-type]
    assert len(table) == 0


def test_resolve_returns_entry_and_removes_it() -> None:
    table = PendingTable()
    entry = table.add()
    response = {"msg_type": "ping", "req_id": 1}
    assert table.resolve(1, response) is entry
    assert entry.result is response
    assert entry.wait(0) is True
    assert 1 not in table
    assert table.resolve(1, {}) is None  # resolved once only
    assert table.resolve(42, {}) is None


def test_resolve_wakes_waiter_in_another_thread() -> None:
    table = PendingTable()
    entry = table.add()
    started = threading.Event()
    outcome: list[object] = []

    def waiter() -> None:
        started.set()
        woke = entry.wait(5.0)
        outcome.append((woke, entry.result))

    thread = threading.Thread(target=waiter, name="test-waiter")
    thread.start()
    assert started.wait(5.0)
    table.resolve(entry.req_id, {"ok": 1})
    thread.join(5.0)
    assert not thread.is_alive()
    assert outcome == [(True, {"ok": 1})]


def test_wait_timeout_returns_false() -> None:
    table = PendingTable()
    entry = table.add()
    assert entry.wait(0.01) is False
    assert entry.wait(-1) is False  # a negative timeout does not raise
    assert entry.result is None
    assert entry.req_id in table


def test_discard() -> None:
    table = PendingTable()
    entry = table.add()
    assert table.discard(entry) is True
    assert entry.req_id not in table
    assert table.discard(entry) is False
    assert table.resolve(entry.req_id, {}) is None
    # A resolved entry cannot be discarded.
    other = table.add()
    table.resolve(other.req_id, {})
    assert table.discard(other) is False


def test_discard_does_not_remove_a_newer_entry_with_same_id() -> None:
    table = PendingTable()
    old = table.add(7)
    table.resolve(7, {})
    new = table.add(7)
    assert table.discard(old) is False
    assert table.resolve(7, {"x": 1}) is new


def test_close_resolves_every_entry_with_a_fresh_exception() -> None:
    table = PendingTable()
    entries = [table.add(), table.add(callback=lambda r: None, deadline=5.0), table.add(9)]
    failed = table.close(lambda: ConnectionClosedError("gone", 1006))
    assert {e.req_id for e in failed} == {1, 2, 9}
    assert len(table) == 0
    assert table.next_deadline() is None
    results = [e.result for e in entries]
    assert all(isinstance(r, ConnectionClosedError) for r in results)
    assert len({id(r) for r in results}) == 3
    assert all(e.wait(0) for e in entries)
    assert table.close(RuntimeError) == []


def test_nothing_can_be_added_after_close() -> None:
    # So an entry is either failed by close() or its caller got an exception: never both.
    table = PendingTable()
    table.close(RuntimeError)
    with pytest.raises(InvalidStateError):
        table.add()


def test_fail_link_fails_only_the_entries_sent_on_that_link() -> None:
    table = PendingTable()
    a, b = object(), object()
    on_a, on_b, waiting = table.add(link=a), table.add(link=b), table.add()
    failed = table.fail_link(a, lambda: ConnectionClosedError("gone"))
    assert failed == [on_a]
    assert isinstance(on_a.result, ConnectionClosedError)
    assert on_b.req_id in table and waiting.req_id in table
    assert table.waiting() == [waiting]


def test_a_timed_out_req_id_is_never_handed_out_again_on_its_link() -> None:
    # Regression: a caller's req_id 3 timed out; the counter later gave 3 to another
    # request, and the late answer to the first resolved the second (the wrong caller).
    table = PendingTable()
    link = object()
    mine = table.add(3, link=link)
    assert table.discard(mine)  # its waiter gave up: the answer may still come
    handed = [table.add(link=link).req_id for _ in range(5)]
    assert 3 not in handed
    assert table.resolve(3, {"late": 1}) is None  # the late answer resolves nobody
    with pytest.raises(ValueError, match="req_id 3 is in use"):
        table.add(3, link=link)
    table.fail_link(link, RuntimeError)  # that link is gone: no answer can come any more
    assert table.add(3).req_id == 3


def test_expired_callback_ids_are_retired_too() -> None:
    table = PendingTable()
    link = object()
    entry = table.add(4, callback=lambda r: None, deadline=1.0, link=link)
    assert table.expire(2.0) == [entry]
    assert table.retired(4)
    with pytest.raises(ValueError):
        table.add(4)


def test_an_id_used_for_an_unawaited_ping_is_retired() -> None:
    table = PendingTable()
    req_id = table.new_id()
    assert table.retired(req_id)
    assert req_id not in [table.add().req_id for _ in range(3)]


def test_retired_ids_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pending, "MAX_RETIRED", 3)
    table = PendingTable()
    ids = [table.new_id() for _ in range(5)]
    assert [table.retired(i) for i in ids] == [False, False, True, True, True]


def test_next_deadline_is_read_from_a_heap_without_a_scan() -> None:
    # Regression: next_deadline()/expire() scanned every pending entry on each dispatch
    # loop. Now the earliest deadline is the heap's top (resolved entries drop out lazily).
    table = PendingTable()
    for i in range(1000):
        table.add(callback=lambda r: None, deadline=100.0 + i)
    first = table.add(callback=lambda r: None, deadline=50.0)

    class NoScan(dict):  # type: ignore[type-arg]
        def values(self) -> Any:
            raise AssertionError("the whole table was scanned")

    table.entries = NoScan(table.entries)
    assert table.next_deadline() == 50.0
    table.resolve(first.req_id, {})
    assert table.next_deadline() == 100.0
    assert table.expire(99.0) == []
    assert len(table.expire(100.5)) == 1


@pytest.mark.parametrize("value", [float("nan"), 0, -1.0, "1", None, True])
def test_check_timeout_rejects_what_is_not_a_positive_number(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        check_timeout(value)


def test_check_timeout_infinity_means_no_limit() -> None:
    assert check_timeout(float("inf")) is None
    assert check_timeout(2) == 2.0


def test_expire_only_callback_entries_past_deadline() -> None:
    table = PendingTable()
    blocking = table.add()  # no deadline: never expires
    early = table.add(callback=lambda r: None, deadline=10.0)
    late = table.add(callback=lambda r: None, deadline=20.0)
    assert table.next_deadline() == 10.0
    assert table.expire(now=9.999) == []
    assert table.expire(now=10.0) == [early]
    assert isinstance(early.result, RequestTimeoutError)
    assert str(early.req_id) in str(early.result)
    assert early.req_id not in table
    assert table.next_deadline() == 20.0
    assert table.expire(now=1e9) == [late]
    assert table.next_deadline() is None
    assert table.expire(now=1e12) == []
    assert blocking.req_id in table
    assert blocking.wait(0) is False


def test_next_deadline_tracks_resolve_and_discard() -> None:
    table = PendingTable()
    a = table.add(callback=lambda r: None, deadline=3.0)
    b = table.add(callback=lambda r: None, deadline=4.0)
    table.resolve(a.req_id, {})
    assert table.next_deadline() == 4.0
    table.discard(b)
    assert table.next_deadline() is None
    assert table.expire(now=100.0) == []


def test_pending_fields() -> None:
    def cb(result: object) -> None:
        pass

    entry = Pending(3, cb, 1.5, inline=True)
    assert (entry.req_id, entry.callback, entry.deadline, entry.inline) == (3, cb, 1.5, True)
    assert entry.result is None
    assert entry.wait(0) is False


def test_wait_after_resolve_keeps_returning_true() -> None:
    table = PendingTable()
    entry = table.add()
    table.resolve(entry.req_id, {"ok": 1})
    assert entry.wait(0) is True
    assert entry.wait(0) is True


def test_ids_unique_under_concurrent_adds() -> None:
    table = PendingTable()
    barrier = threading.Barrier(4, timeout=5.0)
    ids: list[list[int]] = [[] for _ in range(4)]

    def adder(out: list[int]) -> None:
        barrier.wait()
        out.extend(table.add().req_id for _ in range(300))

    threads = [threading.Thread(target=adder, args=(out,), name="test-add") for out in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5.0)
        assert not t.is_alive()
    every = [i for out in ids for i in out]
    assert sorted(every) == list(range(1, 1201))
    assert len(table) == 1200
