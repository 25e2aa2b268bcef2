"""One import point for the websockets API, whichever version Debian ships.

websockets >= 13 has the new asyncio implementation (websockets.asyncio.client / .server); older versions
(Debian bookworm has 10.4) only have the legacy one. Both take the same arguments for what these scripts use,
except the name of the extra-headers argument and where the handshake headers are kept.
"""
import websockets

VERSION = websockets.__version__

try:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    NEW_API = True
except ImportError:  # websockets < 13: the legacy implementation
    from websockets import connect, serve

    NEW_API = False

ConnectionClosed = websockets.ConnectionClosed


def headers_kwarg(headers):
    """The connect() keyword that adds request headers."""
    return {"additional_headers": headers} if NEW_API else {"extra_headers": headers}


def request_of(ws):
    """(path, [(name, value), ...]) of the handshake request a server connection received."""
    if NEW_API:
        return ws.request.path, list(ws.request.headers.raw_items())
    return ws.path, list(ws.request_headers.raw_items())


def response_headers_of(ws):
    """[(name, value), ...] of the handshake response a client connection received."""
    headers = ws.response.headers if NEW_API else ws.response_headers
    return list(headers.raw_items())
