"""``python -m bench.keepalive``: errors on reused idle connections, by server keep-alive timeout.

An httpx client keeps idle connections for 5 s (``keepalive_expiry``, httpx's
default). When the server closes idle connections after the same 5 s
(uvicorn's default), a request sometimes goes out on a connection the server
is closing at that moment and fails with a read or protocol error. This
sends the same load to ``python -m service`` with each keep-alive timeout
asked for and counts the errors by kind::

    python -m bench.keepalive --requests 20000 --concurrency 64 --timeouts 5 75

One shared ``httpx.AsyncClient`` with httpx's default limits (what an
application does), ``concurrency`` workers sending ``GET /generate?n=1`` back to
back; with ``--pause-every K`` a worker also pauses a random 4.5-5.5 s every K
requests, so that more connections fall idle for about the client's expiry, as
under uneven traffic. Errors are reported, never retried.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.servers import REPO, Server, clean_env

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def load(
    url: str, requests: int, concurrency: int, expiry_s: float, pause_every: int
) -> Counter[str]:
    """Send ``requests`` requests with ``concurrency`` workers; count outcomes by kind."""
    outcomes: Counter[str] = Counter()
    tickets = iter(range(requests))
    limits = httpx.Limits(keepalive_expiry=expiry_s)  # httpx's defaults otherwise
    rng = random.Random(0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            for index in tickets:
                try:
                    r = await client.get("/generate", params={"n": 1, "seed": index})
                    ok = r.status_code == 200 and r.content.startswith(PNG_SIGNATURE)
                    outcomes["ok" if ok else f"status {r.status_code}"] += 1
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1
                if pause_every and index % pause_every == pause_every - 1:
                    await asyncio.sleep(rng.uniform(expiry_s - 0.5, expiry_s + 0.5))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.keepalive", description=__doc__.split("\n")[0]
    )
    p.add_argument("--models-dir", type=Path, default=REPO / "models")
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--expiry", type=float, default=5.0, help="client keepalive_expiry, seconds")
    p.add_argument("--pause-every", type=int, default=0, help="0: never pause")
    p.add_argument(
        "--timeouts", type=int, nargs="+", default=[5, 75], help="server keep-alive seconds"
    )
    args = p.parse_args(argv)
    pauses = (
        f", a pause of {args.expiry - 0.5:g}-{args.expiry + 0.5:g} s every {args.pause_every} "
        "requests per worker"
        if args.pause_every
        else ""
    )
    print(
        f"{args.requests} requests, concurrency {args.concurrency}, client keepalive_expiry "
        f"{args.expiry:g} s{pauses}"
    )
    print("| server keep-alive (s) | requests | errors | by kind | seconds |")
    print("|--:|--:|--:|---|--:|")
    with tempfile.TemporaryDirectory() as tmp:
        for timeout in args.timeouts:
            env = clean_env(
                {"GANSERVE_KEEPALIVE_TIMEOUT_S": str(timeout), "GANSERVE_LOG_LEVEL": "warning"}
            )
            cmd = ["-m", "service", "--port", "{port}", "--models-dir", str(args.models_dir)]
            log = Path(tmp) / f"server-{timeout}.log"
            with Server("ganserve", cmd, health="/readyz", log_path=log, env=env) as server:
                start = time.perf_counter()
                outcomes = asyncio.run(
                    load(server.url, args.requests, args.concurrency, args.expiry, args.pause_every)
                )
                seconds = time.perf_counter() - start
            errors = {k: v for k, v in outcomes.items() if k != "ok"}
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "–"
            print(
                f"| {timeout} | {sum(outcomes.values())} | {sum(errors.values())} | {kinds} "
                f"| {seconds:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
