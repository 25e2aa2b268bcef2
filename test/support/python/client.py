"""Python websockets client for interop tests.

Connects to the URL, sends each --text / --binary (hex) message in order and reads one reply per message (or
--expect N), closes with --close-code / --close-reason, and prints one JSON line per event:
  {"event": "open", "subprotocol": ..., "headers": [[name, value], ...]}
  {"event": "message", "type": "text", "data": "..."} or {"event": "message", "type": "binary", "hex": "..."}
  {"event": "closed", "code": ..., "reason": "..."}
  {"event": "error", "type": "InvalidStatusCode", "message": "..."}  (exit status 2)
"""
import argparse
import asyncio
import json
import ssl
import sys

from _compat import headers_kwarg, response_headers_of, connect


def emit(**event):
    print(json.dumps(event), flush=True)


async def main(args):
    context = None
    if args.url.startswith("wss:"):
        context = ssl.create_default_context(cafile=args.cafile)
    headers = [tuple(h.split(":", 1)) for h in args.header or []]
    async with connect(
        args.url,
        ssl=context,
        compression=None if args.no_compression else "deflate",
        max_size=args.max_size,
        subprotocols=args.subprotocol,
        open_timeout=args.timeout,
        **headers_kwarg(headers),
    ) as ws:
        emit(event="open", subprotocol=ws.subprotocol, headers=response_headers_of(ws))
        messages = args.messages or []
        for kind, value in messages:
            await ws.send(value if kind == "text" else bytes.fromhex(value))
        for _ in range(len(messages) if args.expect is None else args.expect):
            reply = await ws.recv()
            if isinstance(reply, str):
                emit(event="message", type="text", data=reply)
            else:
                emit(event="message", type="binary", hex=reply.hex())
        await ws.close(args.close_code, args.close_reason)
    emit(event="closed", code=ws.close_code, reason=ws.close_reason)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--cafile")
    parser.add_argument("--no-compression", action="store_true")
    parser.add_argument("--max-size", type=int, default=2**20)
    parser.add_argument("--subprotocol", action="append")
    parser.add_argument("--header", action="append", help="name:value")
    parser.add_argument("--text", dest="messages", action="append", type=lambda s: ("text", s))
    parser.add_argument("--binary", dest="messages", action="append", type=lambda s: ("binary", s), help="hex")
    parser.add_argument("--expect", type=int)
    parser.add_argument("--close-code", type=int, default=1000)
    parser.add_argument("--close-reason", default="")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(main(args), args.timeout))
    except Exception as error:  # report any failure as data for the test to check
        emit(event="error", type=type(error).__name__, message=str(error))
        sys.exit(2)
