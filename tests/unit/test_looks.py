"""Looks: each object's timer sleeps on the event loop until the object is due, and wakes when that changes."""

from __future__ import annotations

import asyncio
import threading
import time

from lathe_operator.handlers.apply import Looks


class Stopper:
    """kopf's ``stopped`` flag, set from the event loop as kopf sets it."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


def _waited(coroutine_factory, before=None) -> float:  # type: ignore[no-untyped-def]
    async def main() -> float:
        started = time.monotonic()
        task = asyncio.ensure_future(coroutine_factory())
        if before is not None:
            await before()
        await asyncio.wait_for(task, 10)
        return time.monotonic() - started

    return asyncio.run(main())


def test_an_unseen_object_is_due_at_once_and_a_settled_one_sleeps_until_the_longest_turn() -> None:
    looks = Looks()
    assert looks.due("new")
    assert _waited(lambda: looks.until_due("new", Stopper(), longest=30)) < 0.5
    looks.after("settled", None)
    assert not looks.due("settled")
    assert 0.3 <= _waited(lambda: looks.until_due("settled", Stopper(), longest=0.3)) < 2


def test_a_requeue_from_another_thread_wakes_the_sleeping_timer() -> None:
    looks = Looks()
    looks.after("a", 3600)

    async def nudge() -> None:
        await asyncio.sleep(0.2)
        threading.Thread(target=looks.after, args=("a", 0.1)).start()  # a reconcile in a worker thread

    waited = _waited(lambda: looks.until_due("a", Stopper(), longest=30), nudge)
    assert 0.2 <= waited < 2 and looks.due("a")


def test_a_later_requeue_keeps_it_asleep_and_stopping_ends_the_wait() -> None:
    looks, stopper = Looks(), Stopper()
    looks.after("a", 0.2)

    async def later_then_stop() -> None:
        await asyncio.sleep(0.05)
        looks.after("a", 3600)  # woken, it finds the new time and sleeps on
        await asyncio.sleep(0.5)
        stopper.event.set()

    waited = _waited(lambda: looks.until_due("a", stopper, longest=30), later_then_stop)
    assert 0.5 <= waited < 2 and not looks.due("a")
