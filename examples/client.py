#!/usr/bin/env python3
"""A netlab client in plain Python (standard library only), written from docs/PROTOCOL.md.

    python3 examples/client.py --host 127.0.0.1 --port 9090

It shows the server's greeting, then sends each line typed (or piped in) as one message
and shows the reply, until end of input, /quit, or the server closes the connection. On a
terminal, the answer to a question ending in "Password:" is read without echo.
Exit status 0 after end of input or /quit; 1 if the server closed first, or on an error.
"""

import argparse
import getpass
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


def ask(question):
    """The user's next line, or None at end of input; a password is not shown as typed."""
    if sys.stdin.isatty() and question.lower().endswith("password:"):
        try:
            return getpass.getpass("")
        except EOFError:
            return None
    line = sys.stdin.readline()
    return line.rstrip("\r\n") if line else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    args = parser.parse_args()

    with socket.create_connection((args.host, args.port), timeout=30) as sock:
        message = recv_msg(sock)
        if message is None:
            print("client.py: the server closed the connection without a greeting", file=sys.stderr)
            return 1
        while True:
            print(message, flush=True)
            line = ask(message)
            if line is None or line.strip() == "/quit":
                return 0
            send_msg(sock, line)
            message = recv_msg(sock)
            if message is None:
                print("client.py: the server closed the connection", file=sys.stderr)
                return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ProtocolError, UnicodeDecodeError) as e:
        print(f"client.py: {e}", file=sys.stderr)
        sys.exit(1)
