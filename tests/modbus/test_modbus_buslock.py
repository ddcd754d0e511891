"""The RTU bus lock: units get the bus in the order they asked for it; a stopping unit gives up."""

from __future__ import annotations

import threading

from drivers.modbus.driver import FairLock
from tests.helpers import wait_until


def test_turns_are_given_in_arrival_order() -> None:
    lock = FairLock()
    never = threading.Event()
    assert lock.acquire(never)
    order: list[int] = []

    def unit(n: int) -> None:
        assert lock.acquire(never)
        order.append(n)
        lock.release()

    threads = []
    for n in range(5):
        t = threading.Thread(target=unit, args=(n,))
        t.start()
        threads.append(t)
        wait_until(lambda n=n: len(lock._waiters) == n + 1, 5, what=f"unit {n} queued")
    lock.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]
    assert lock.acquire(never)  # free again
    lock.release()


def test_a_stopping_waiter_leaves_the_queue_and_the_next_one_gets_the_bus() -> None:
    lock = FairLock()
    never, stopping = threading.Event(), threading.Event()
    assert lock.acquire(never)
    results: dict[str, bool] = {}
    quitter = threading.Thread(target=lambda: results.update(quitter=lock.acquire(stopping)))
    quitter.start()
    wait_until(lambda: len(lock._waiters) == 1, 5, what="queued")

    def patient() -> None:
        results["patient"] = lock.acquire(never)
        lock.release()

    waiter = threading.Thread(target=patient)
    waiter.start()
    wait_until(lambda: len(lock._waiters) == 2, 5, what="queued")
    stopping.set()
    quitter.join(5)
    assert results["quitter"] is False
    lock.release()
    waiter.join(5)
    assert results["patient"] is True
    assert lock.acquire(never, timeout=0.2)
    lock.release()
