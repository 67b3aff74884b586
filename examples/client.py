#!/usr/bin/env python3
"""A netlab client in plain Python (standard library only), written from docs/PROTOCOL.md.

    python3 examples/client.py --host 127.0.0.1 --port 9090

It shows the server's greeting, then sends each line typed (or piped in) as one message
and shows the reply, until end of input, /quit, or the server closes the connection.
"""

import argparse
import socket
import struct
import sys

HEADER = struct.Struct("!I")  # 4 bytes, unsigned, big-endian: the payload length in bytes
MAX_FRAME = 64 * 1024


class ProtocolError(Exception):
    pass


def recv_exact(sock, n):
    """Exactly n bytes, or fewer if the peer closed: one recv() may return any part."""
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def send_msg(sock, text):
    payload = text.encode("utf-8")  # the header counts bytes, not characters
    if len(payload) > MAX_FRAME:
        raise ProtocolError(f"message of {len(payload)} bytes is over the maximum")
    sock.sendall(HEADER.pack(len(payload)) + payload)


def recv_msg(sock):
    """The next message, or None if the server closed the connection between messages."""
    header = recv_exact(sock, HEADER.size)
    if not header:
        return None
    if len(header) < HEADER.size:
        raise ProtocolError("connection closed inside a message header")
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"server announced {length} bytes, over the maximum")
    payload = recv_exact(sock, length)
    if len(payload) < length:
        raise ProtocolError("connection closed inside a message")
    return payload.decode("utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    args = parser.parse_args()

    with socket.create_connection((args.host, args.port), timeout=30) as sock:
        greeting = recv_msg(sock)
        if greeting is None:
            return 0
        print(greeting, flush=True)
        for line in sys.stdin:
            line = line.rstrip("\r\n")
            if line.strip() == "/quit":
                break
            send_msg(sock, line)
            reply = recv_msg(sock)
            if reply is None:
                print("server closed the connection", file=sys.stderr)
                return 0
            print(reply, flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ProtocolError, UnicodeDecodeError) as e:
        print(f"client.py: {e}", file=sys.stderr)
        sys.exit(1)
