#!/usr/bin/env python3
"""Adds latency to TCP connections, for compare.sh's +RTT mode (tc netem
does not work on these machines).

    relay.py DELAY_MS LISTEN_PORT=TARGET_HOST:TARGET_PORT ...

Listens on 127.0.0.1:LISTEN_PORT for each mapping and forwards every
connection to its target. Every chunk read on either side is written to the
other DELAY_MS later (so a round trip costs 2 x DELAY_MS), in order; the
bandwidth is not limited. Prints "ready" once every port listens. Standard
library only.
"""

import asyncio
import sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(256 * 1024)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def serve(listen_port, host, port, delay):
    async def handle(client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            pump(client_r, server_w, delay),
            pump(server_r, client_w, delay),
            return_exceptions=True,
        )
        for w in (client_w, server_w):
            w.close()

    return await asyncio.start_server(handle, "127.0.0.1", listen_port, backlog=512)


async def main():
    delay = float(sys.argv[1]) / 1000.0
    servers = []
    for spec in sys.argv[2:]:
        listen, target = spec.split("=", 1)
        host, port = target.rsplit(":", 1)
        servers.append(await serve(int(listen), host, int(port), delay))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
