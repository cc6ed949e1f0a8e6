"""OpenCode starts in one process are bounded by the machine (`concurrent_starts`), and a start
waiting for its slot is not timed: a burst of first turns is served in waves, not failed."""

from __future__ import annotations

import trio

from oco.opencode._startup import concurrent_starts, start_ticket

MIGRATED = {"HOME": "/nonexistent-home", "OPENCODE_DB": "/nonexistent/opencode.db"}


async def test_no_more_starts_run_at_once_than_there_are_slots(autojump_clock) -> None:
    slots = concurrent_starts()
    first = await start_ticket(MIGRATED)
    first.succeeded()  # the home is migrated: from now on only the slots bound the starts
    running = 0
    most = 0
    done = 0

    async def start() -> None:
        nonlocal running, most, done
        ticket = await start_ticket(MIGRATED)
        try:
            running += 1
            most = max(most, running)
            await trio.sleep(5)  # a start takes 5 s
        finally:
            running -= 1
            ticket.release()
        done += 1

    starts = 3 * slots + 1
    began = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(starts):
            nursery.start_soon(start)
    assert done == starts
    assert most == slots  # never more at once, and the slots are all used
    assert trio.current_time() - began == 5 * 4  # four waves of 5 s: each start got its own 5 s


async def test_a_start_cancelled_while_waiting_for_a_slot_gives_nothing_away(autojump_clock) -> None:
    held = [await start_ticket(MIGRATED) for _ in range(concurrent_starts())]
    for ticket in held:
        ticket.succeeded()
    held = [await start_ticket(MIGRATED) for _ in range(concurrent_starts())]
    with trio.move_on_after(1) as waited:
        await start_ticket(MIGRATED)  # every slot is taken
    assert waited.cancelled_caught
    for ticket in held:
        ticket.release()
    with trio.fail_after(1):  # the cancelled wait left every slot free
        again = [await start_ticket(MIGRATED) for _ in range(concurrent_starts())]
    for ticket in again:
        ticket.release()
