"""A registration flood against `netkit chat serve`, written against the wire.

usage: register_flood.py HOST:PORT CONNECTIONS SOURCES SECONDS

Opens CONNECTIONS connections spread over SOURCES loopback source addresses
(127.0.1.1, 127.0.1.2, ...), and on each keeps sending `register` for a new
name, once a second, until one is welcomed or SECONDS have passed. Prints `flooding` once every
connection has sent its first `register`, and at the end one JSON object
counting the answers by kind.
"""

import asyncio
import collections
import json
import sys

# Any valid Ed25519 public key will do: the flood never sends direct messages.
KEY = "PUJxw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="


async def flood(host, port, source, index, deadline, counts, started):
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.open_connection(
            host, port, local_addr=(source, 0), limit=1 << 17
        )
    except OSError:
        counts["connect_failed"] += 1
        started.release()
        return
    try:
        await reader.readline()  # hello
        attempt = 0
        first = True
        while loop.time() < deadline:
            frame = {
                "type": "register",
                "version": 1,
                "name": f"flood{index}x{attempt}",
                "password": "flood password",
                "udp_port": 9,
                "key": KEY,
            }
            writer.write((json.dumps(frame) + "\n").encode())
            await writer.drain()
            if first:
                started.release()
                first = False
            line = await asyncio.wait_for(
                reader.readline(), max(0.1, deadline - loop.time())
            )
            if not line:
                counts["closed"] += 1
                return
            answer = json.loads(line)
            kind = answer.get("code", answer["type"])
            counts[kind] += 1
            if answer["type"] == "welcome":
                return
            # A try a second per connection stays under the server's
            # default frame rate, so the flood is never cut off as flooding.
            await asyncio.sleep(1)
            attempt += 1
    except (OSError, asyncio.TimeoutError, ValueError):
        pass
    finally:
        if first:
            started.release()
        writer.close()


async def main():
    host, port = sys.argv[1].rsplit(":", 1)
    connections, sources, seconds = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    counts = collections.Counter()
    started = asyncio.Semaphore(0)
    tasks = [
        asyncio.create_task(
            flood(host, int(port), f"127.0.1.{1 + i % sources}", i, deadline, counts, started)
        )
        for i in range(connections)
    ]
    for _ in range(connections):
        await started.acquire()
    print("flooding", flush=True)
    await asyncio.gather(*tasks)
    print(json.dumps(counts), flush=True)


asyncio.run(main())
