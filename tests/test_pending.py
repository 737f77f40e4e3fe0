"""deriv_sdk.pending: req_id allocation, resolution, waiters, fail_all and expiry."""

from __future__ import annotations

import threading

import pytest

from deriv_sdk.errors import ConnectionClosedError, RequestTimeoutError
from deriv_sdk.pending import Pending, PendingTable


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
    with pytest.raises(ValueError, match="already pending"):
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


def test_fail_all_resolves_every_entry_with_a_fresh_exception() -> None:
    table = PendingTable()
    entries = [table.add(), table.add(callback=lambda r: None, deadline=5.0), table.add(9)]
    failed = table.fail_all(lambda: ConnectionClosedError("gone", 1006))
    assert {e.req_id for e in failed} == {1, 2, 9}
    assert len(table) == 0
    assert table.next_deadline() is None
    results = [e.result for e in entries]
    assert all(isinstance(r, ConnectionClosedError) for r in results)
    assert len({id(r) for r in results}) == 3
    assert all(e.wait(0) for e in entries)
    assert table.fail_all(RuntimeError) == []


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
