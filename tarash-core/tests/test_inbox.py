"""The webhook inbox wakes a job's waits from the thread that delivers its event (``_inbox``)."""

from __future__ import annotations

import asyncio

from tarash.tarash_gateway._inbox import Inbox
from tarash.tarash_gateway.webhooks import WebhookEvent

EVENT = WebhookEvent(provider="p", job_id="j", state="completed", output={"url": "u"})


def test_a_wait_whose_loop_closed_does_not_keep_the_event_from_the_others() -> None:
    inbox = Inbox()
    gone = asyncio.new_event_loop()
    abandoned = gone.create_task(inbox.wait_async("p", "j", 30))
    gone.run_until_complete(asyncio.sleep(0.01))  # the wait is registered, then its loop is closed
    gone.close()
    assert not abandoned.done()

    async def wait_for_the_event() -> WebhookEvent | None:
        waiting = asyncio.ensure_future(inbox.wait_async("p", "j", 5))
        await asyncio.sleep(0.01)
        assert await asyncio.to_thread(inbox.deliver, EVENT) is True
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(wait_for_the_event()) == EVENT
