"""Section 6: messages per second through a three-hop relay chain, and the end-to-end time per message."""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from common import ms, perf, say, section


def relay_chain_throughput(n: int, concurrency: int) -> None:
    """Print section 6: `n` messages, `concurrency` at a time."""
    section(f"6. Through a three-hop chain (smtp.example.org -> relay1.example.org -> mx1.example.net), {n} messages")
    from smtplab import Lab, relay_chain
    say("  lab.asend submits with STARTTLS + AUTH, each hop relays over STARTTLS; timed until the last one is in Bob's Maildir")
    say("  end-to-end: from smtp.example.org accepting a message to mx1 accepting it (the lab's per-message trace)")
    with Lab(relay_chain(1)) as lab:
        async def send_all() -> list[Any]:
            results = []
            for start in range(0, n, concurrency):
                batch = [lab.asend("alice@example.org", "bob@example.net", subject=f"chain {i}")
                         for i in range(start, min(n, start + concurrency))]
                results += await asyncio.gather(*batch)
            return results
        lab.send("alice@example.org", "bob@example.net", subject="warm-up")
        lab.wait_for_queue(30)
        t0 = perf()
        results = asyncio.run(send_all())
        emptied = lab.wait_for_queue(120)
        elapsed = perf() - t0
        delivered = len(lab.inbox("bob@example.net")) - 1
        totals = [t.total for t in (lab.trace(r) for r in results) if len(t.hops) == 3 and t.total is not None]
        say(f"  {delivered}/{n} delivered ({'queue empty' if emptied else 'QUEUE NOT EMPTY'}) in {elapsed:.2f} s: "
            f"{delivered / elapsed:.0f} messages/s end to end")
        if totals:
            say(f"  end-to-end per message: median {ms(statistics.median(totals))}, "
                f"p90 {ms(sorted(totals)[int(len(totals) * 0.9) - 1])}, over {len(totals)} traced messages")
