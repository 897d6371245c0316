"""A closed-loop HTTP/1.1 load client for bench/serve.py: minimal (asyncio streams, keep-alive, one
connection per concurrent client) so that it takes as little of the shared CPU as possible.

    stats = asyncio.run(load(port, n=32, concurrency=8, duration=3, max_requests=10_000))
"""

from __future__ import annotations

import asyncio
import random
import time


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str) -> tuple[int, int]:
        """POST path; (status, body bytes). Reads Content-Length and chunked bodies."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            size = int(headers["content-length"])
            await self.reader.readexactly(size)
        else:  # chunked
            size = 0
            while True:
                length = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(length + 2)
                size += length
                if length == 0:
                    break
        if headers.get("connection") == "close":
            await self.close()
        return status, size

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def load(
    port: int, n: int, concurrency: int, duration: float, max_requests: int, route: str = "/generate", query: str = ""
) -> dict:
    """Closed loop: `concurrency` clients each POST route?n= with random seeds until time or count run out."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    started = time.perf_counter()
    budget = [max_requests]

    async def client(seed_base: int) -> None:
        connection = Connection(port)
        try:
            await connection.post(f"{route}?n={n}&seed={seed_base}{query}")  # warm the connection, not timed
            while budget[0] > 0 and time.perf_counter() - started < duration:
                budget[0] -= 1
                t0 = time.perf_counter()
                try:
                    status, _ = await connection.post(f"{route}?n={n}&seed={random.randrange(2**62)}{query}")
                except (OSError, asyncio.IncompleteReadError) as error:
                    errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                    await connection.close()
                    continue
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        finally:
            await connection.close()

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    ok = len(latencies) - sum(v for k, v in errors.items() if k.isdigit())
    return {
        "n": n,
        "c": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "images": ok * n,
        "images_per_s": ok * n / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan"),
    }
