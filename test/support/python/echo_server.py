"""Python websockets echo server for interop tests.

Prints one JSON line {"event": "ready", "port": N, "version": "..."} once it listens, then one line per connection
({"event": "connection", ...}) and per close ({"event": "closed", "code": ..., "reason": ...}). Echoes text as text
and binary as binary. Stops on SIGTERM or SIGINT, and by itself after --lifetime seconds so that nothing outlives a
crashed test run.
"""
import argparse
import asyncio
import json
import signal
import ssl

from _compat import VERSION, ConnectionClosed, request_of, serve


def emit(**event):
    print(json.dumps(event), flush=True)


async def echo(ws):
    path, headers = request_of(ws)
    emit(event="connection", path=path, headers=headers, subprotocol=ws.subprotocol)
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass
    emit(event="closed", code=ws.close_code, reason=ws.close_reason)


async def main(args):
    context = None
    if args.certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.certfile, args.keyfile)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    server = await serve(
        echo,
        args.host,
        args.port,
        ssl=context,
        compression=None if args.no_compression else "deflate",
        max_size=args.max_size,
        subprotocols=args.subprotocol,
    )
    emit(event="ready", port=server.sockets[0].getsockname()[1], version=VERSION)
    try:
        await asyncio.wait_for(stop, args.lifetime)
    except asyncio.TimeoutError:
        pass
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--no-compression", action="store_true")
    parser.add_argument("--max-size", type=int, default=2**20)
    parser.add_argument("--subprotocol", action="append")
    parser.add_argument("--lifetime", type=float, default=60.0)
    asyncio.run(main(parser.parse_args()))
