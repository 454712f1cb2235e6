#!/usr/bin/env python3
"""A TCP forwarder that holds every chunk for DELAY ms before passing it on.

    delay_proxy.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS

The kernel of this machine has no sch_netem, so `tc netem` cannot add latency; this
proxy, run inside the benchmark's network namespace, adds DELAY_MS in each
direction instead (2 x DELAY_MS per request/response round trip). It forwards bytes
untouched, so TLS runs end to end through it. It prints "ready" once listening.
"""

from __future__ import annotations

import asyncio
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            # Keep order and add latency without limiting throughput: schedule each chunk.
            due = loop.time() + delay
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main() -> None:
    listen_host, listen_port, target_host, target_port, delay_ms = sys.argv[1:6]
    delay = float(delay_ms) / 1000.0

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer, delay), pipe(server_reader, client_writer, delay))

    server = await asyncio.start_server(handle, listen_host, int(listen_port))
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
