"""Media relay benchmark with real Chromium peers.

Runs the relay in its own process (the harness app of tests/support/relay_harness.py, on 127.0.0.1)
and headless Chromium participants against it, then prints:

- server CPU (% of one core) per relayed stream, forwarding encoded frames vs transcoding,
  measured in the same run one after the other (the ratio is the headline: CPU here is shared
  and noisy); a "stream" is one participant's audio+video delivered to one other participant;
- first remote frame times (opening the page to the first decoded remote frame), p50/p95,
  over 100 sequential 1:1 visits; and the server's RSS before and after those 100 visits;
- the largest number of concurrent 1:1 visits with every stream received at >= 18 fps,
  found by adding visits one at a time, and what gave out first.

The last line is one JSON object. Usage: .venv/bin/python bench/relay.py [--visits 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# `python bench/relay.py` puts bench/ on the import path, not the repository root where
# tests.support lives (app, scheduling and signaling also come from the editable install).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.servers import free_port, serving
from tests.support.waiting import wait_for

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIN_FPS = 18.0  # a visit is "sustained" while every stream is received at this rate or better


# ---------------------------------------------------------------- server process


def serve(port: int) -> None:
    """The relay process: /forward/relay/ forwards, /transcode/relay/ decodes and encodes."""
    from aiohttp import web

    from signaling.relay import MediaRelay
    from tests.support.relay_harness import RELAY, harness_app

    async def counts(request: web.Request) -> web.Response:
        import gc
        import threading

        gc.collect()
        rooms = sum(len(a[RELAY].rooms) for a in apps)
        return web.json_response({"rooms": rooms, "threads": threading.active_count()})

    root = web.Application()
    apps = []
    for prefix, forward in (("/forward/", True), ("/transcode/", False)):
        sub = harness_app(MediaRelay(ice_servers=[], loopback=True, forward=forward))
        apps.append(sub)
        root.add_subapp(prefix, sub)
    root.router.add_get("/counts", counts)
    web.run_app(root, host="127.0.0.1", port=port, print=None, handle_signals=True)


# ---------------------------------------------------------------- measuring side


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Visit:
    """Two Chromium pages (patient, provider) in one visit."""

    def __init__(self, base: str, mode: str, room: str, pages: list[Any]) -> None:
        self.base, self.mode, self.room, self.pages = base, mode, room, pages
        self.first_frame_s: list[float] = []

    async def open(self) -> None:
        await asyncio.gather(*(self._open_one(page, who) for page, who in self._pairs()))

    def _pairs(self) -> list[tuple[Any, str]]:
        return list(zip(self.pages, ("patient", "provider"), strict=True))

    async def _open_one(self, page: Any, who: str) -> None:
        remote = "provider" if who == "patient" else "patient"
        started = time.monotonic()
        await page.goto(f"{self.base}/{self.mode}/relay/?room={self.room}&who={who}")

        async def decoding() -> bool:
            seen = await page.evaluate(
                "(id) => window.harness && window.harness.remote && window.harness.remote(id)",
                remote,
            )
            if seen is not None and seen is not False:
                state = await page.evaluate("window.harness.state")
                if state in ("error", "failed"):
                    raise RuntimeError(f"{who}: {state}")
            return bool(seen) and seen["framesDecoded"] > 0

        await wait_for(decoding, 20, f"{who} decodes {remote}")
        self.first_frame_s.append(time.monotonic() - started)

    async def frames_per_stream(self) -> list[int]:
        counts = []
        for page, who in self._pairs():
            remote = "provider" if who == "patient" else "patient"
            seen = await page.evaluate("(id) => window.harness.remote(id)", remote)
            counts.append(int(seen["framesDecoded"]))
        return counts

    async def frames_decoded(self) -> int:
        return sum(await self.frames_per_stream())

    async def close(self, session: Any) -> None:
        for _, who in self._pairs():
            url = f"{self.base}/{self.mode}/relay/leave"
            async with session.post(url, json={"room": self.room, "participant": who}) as resp:
                resp.raise_for_status()
        await asyncio.gather(*(page.goto("about:blank") for page in self.pages))


async def _measure_cpu(pid: int, visits: list[Visit], seconds: float) -> tuple[float, float]:
    """Server CPU % of one core over `seconds`, and the mean received fps per stream."""
    frames_before = sum([await v.frames_decoded() for v in visits])
    cpu_before, wall_before = _cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu_after, wall_after = _cpu_seconds(pid), time.monotonic()
    frames_after = sum([await v.frames_decoded() for v in visits])
    wall = wall_after - wall_before
    streams = 2 * len(visits)
    fps = (frames_after - frames_before) / wall / streams if streams else 0.0
    return 100 * (cpu_after - cpu_before) / wall, fps


async def _stream_fps(visits: list[Visit], seconds: float) -> list[float]:
    """Received frames per second of every stream (each page's remote video) over `seconds`."""
    before = [await v.frames_per_stream() for v in visits]
    started = time.monotonic()
    await asyncio.sleep(seconds)
    after = [await v.frames_per_stream() for v in visits]
    wall = time.monotonic() - started
    return [
        (b - a) / wall
        for first, last in zip(before, after, strict=True)
        for a, b in zip(first, last, strict=True)
    ]


async def _ramp(
    base: str, server_pid: int, session: Any, browser: Any, args: argparse.Namespace
) -> dict[str, Any]:
    """Add concurrent 1:1 visits one at a time until a stream drops under the frame-rate floor.

    Reports the largest count where every stream kept >= MIN_FPS, the server's CPU there, and
    what gave out first: the relay process (near a full core) or the Chromium peers, which run
    on the same machine and need far more CPU than the relay (they encode and decode video).
    """
    steps: list[dict[str, Any]] = []
    visits: list[Visit] = []
    sustained = 0
    limited_by = f"ramp stopped at --max-visits {args.max_visits}"
    try:
        for count in range(1, args.max_visits + 1):
            pages = [await (await browser.new_context()).new_page() for _ in range(2)]
            visit = Visit(base, "forward", f"ramp-{count}", pages)
            await visit.open()
            visits.append(visit)
            await asyncio.sleep(3)  # settle: keyframes, bitrate ramp-up
            cpu_before, wall_before = _cpu_seconds(server_pid), time.monotonic()
            fps = await _stream_fps(visits, args.seconds)
            cpu = 100 * (_cpu_seconds(server_pid) - cpu_before) / (time.monotonic() - wall_before)
            steps.append(
                {"visits": count, "min_fps": round(min(fps), 1), "server_cpu_pct": round(cpu, 1)}
            )
            if min(fps) < MIN_FPS:
                limited_by = "relay process" if cpu >= 85 else "Chromium peers on the same machine"
                break
            sustained = count
    finally:
        for visit in visits:
            await visit.close(session)
            for page in visit.pages:
                await page.context.close()
    # What one core of relay would carry if the peers were elsewhere, from the last sustained step.
    last = steps[sustained - 1] if sustained else None
    estimate = (
        int(sustained * 100 / last["server_cpu_pct"]) if last and last["server_cpu_pct"] else None
    )
    return {
        "max_visits": sustained,
        "max_visits_limited_by": limited_by,
        "max_visits_relay_core_estimate": estimate,
        "max_visits_steps": steps,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    from playwright.async_api import async_playwright

    from tests.support import chromium

    port = free_port()
    command = [sys.executable, __file__, "--serve", str(port)]
    result: dict[str, Any] = {"peers": "headless Chromium (fake camera 640x480, fake mic)"}
    with serving(command, port=port, env=os.environ, health="/counts") as server:
        base = server.url
        async with aiohttp.ClientSession() as session:
            result["rss_mb_at_start"] = round(_rss_mb(server.pid), 1)
            async with async_playwright() as pw:
                browser = await chromium.launch(pw)
                contexts = [await browser.new_context() for _ in range(2 * args.concurrent)]
                pages = [await c.new_page() for c in contexts]

                # Idle baseline, then forwarding vs transcoding with the same pages.
                idle_cpu, _ = await _measure_cpu(server.pid, [], 3)
                result["idle_cpu_pct"] = round(idle_cpu, 2)
                for mode in ("forward", "transcode"):
                    visits = [
                        Visit(base, mode, f"{mode}-{i}", pages[2 * i : 2 * i + 2])
                        for i in range(args.concurrent)
                    ]
                    for visit in visits:
                        await visit.open()
                    await asyncio.sleep(3)  # settle: keyframes, bitrate ramp-up
                    cpu, fps = await _measure_cpu(server.pid, visits, args.seconds)
                    streams = 2 * len(visits)
                    result[f"{mode}_streams"] = streams
                    result[f"{mode}_cpu_pct_total"] = round(cpu, 2)
                    result[f"{mode}_cpu_pct_per_stream"] = round((cpu - idle_cpu) / streams, 2)
                    result[f"{mode}_received_fps_per_stream"] = round(fps, 1)
                    for visit in visits:
                        await visit.close(session)
                result["forward_vs_transcode_cpu_ratio"] = round(
                    result["forward_cpu_pct_per_stream"]
                    / max(result["transcode_cpu_pct_per_stream"], 1e-9),
                    3,
                )

                # 100 sequential short visits: memory must not grow.
                warmup = Visit(base, "forward", "warmup", pages[:2])
                await warmup.open()
                await warmup.close(session)
                await asyncio.sleep(1)
                result["rss_mb_before"] = round(_rss_mb(server.pid), 1)
                first_frames: list[float] = []
                started = time.monotonic()
                for i in range(args.visits):
                    visit = Visit(base, "forward", f"visit-{i}", pages[:2])
                    await visit.open()
                    first_frames.extend(visit.first_frame_s)
                    await visit.close(session)
                result["visits"] = args.visits
                result["visits_seconds"] = round(time.monotonic() - started, 1)
                await asyncio.sleep(2)
                async with session.get(f"{base}/counts") as resp:
                    counts = await resp.json()
                result["rss_mb_after_100_visits"] = round(_rss_mb(server.pid), 1)
                result["rooms_left_after_visits"] = counts["rooms"]
                result["server_threads_after_visits"] = counts["threads"]
                first_frames.sort()
                result["first_frame_p50_s"] = round(statistics.median(first_frames), 3)
                result["first_frame_p95_s"] = round(
                    first_frames[min(len(first_frames) - 1, int(0.95 * len(first_frames)))], 3
                )
                result.update(await _ramp(base, server.pid, session, browser, args))
                await browser.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--visits", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=2, help="1:1 visits in the CPU phases")
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU measuring window")
    parser.add_argument("--max-visits", type=int, default=12, help="upper bound of the ramp")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    result = asyncio.run(run(args))
    for key, value in result.items():
        print(f"{key}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
