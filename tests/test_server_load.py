"""LocalServer under load: 20 clients, each with a ticks stream at 100 ticks/s, for 5 s."""

from __future__ import annotations

import json
import threading
import time

import pytest
import websocket

from deriv_sdk.testing import LocalServer

CLIENTS = 20
SECONDS = 5.0
INTERVAL = 0.01  # 100 ticks/s
SYMBOLS = ["R_10", "R_25", "R_50", "R_75", "R_100"]


@pytest.mark.timeout(60)
def test_twenty_clients_at_100_ticks_per_second() -> None:
    with LocalServer(tick_interval=INTERVAL, seed=3) as srv:
        sockets = [websocket.create_connection(srv.url, timeout=5) for _ in range(CLIENTS)]
        results: list[list[tuple[int, float]]] = [[] for _ in range(CLIENTS)]
        errors: list[BaseException] = []
        go = threading.Barrier(CLIENTS + 1)

        def read(i: int) -> None:
            ws = sockets[i]
            try:
                ws.send(json.dumps({"ticks": SYMBOLS[i % 5], "subscribe": 1, "req_id": i}))
                first = json.loads(ws.recv())
                assert first["msg_type"] == "tick", first
                go.wait(10)
                deadline = time.monotonic() + SECONDS
                while time.monotonic() < deadline:
                    message = json.loads(ws.recv())
                    tick = message["tick"]
                    assert message["req_id"] == i and tick["symbol"] == SYMBOLS[i % 5]
                    results[i].append((tick["epoch"], tick["quote"]))
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [
            threading.Thread(target=read, args=(i,), name=f"load-{i}") for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        go.wait(10)
        for thread in threads:
            thread.join(SECONDS + 10)
        for ws in sockets:
            ws.close(timeout=1)
    assert not errors, errors[:3]
    expected = SECONDS / INTERVAL
    counts = [len(r) for r in results]
    print("ticks per client:", counts)
    assert min(counts) >= 0.5 * expected, counts
    for received in results:
        epochs = [epoch for epoch, _ in received]
        assert epochs == sorted(epochs)  # in order per stream
    # Clients of the same symbol see the same walk: a run of one is found in the other.
    a, b = results[0], results[5]
    probe = b[len(b) // 2 : len(b) // 2 + 5]
    assert any(a[k : k + 5] == probe for k in range(len(a))), "streams diverge"
