#!/usr/bin/env python3
"""A netlab client for the line codec, in plain Python (standard library only).

    netlab serve echo --codec lines
    python3 examples/line_client.py --port 9090

Each line typed (or piped in) is one message; the server's answer is shown once it is
complete. The one rule of the line codec (docs/PROTOCOL.md): the server ends every line
of a message but the last with CRLF, so a message is the lines up to one that ends in a
bare LF.
"""

import argparse
import getpass
import socket
import sys

MAX_LINE = 64 * 1024


def recv_message(f):
    """The next message, or None if the server closed the connection between messages."""
    lines = []
    while True:
        line = f.readline(MAX_LINE + 2)  # bounded: a line is at most the maximum
        if not line:
            if lines:
                raise ConnectionError("the server closed the connection mid-message")
            return None
        if line.endswith(b"\r\n"):
            lines.append(line[:-2])  # more lines of this message follow
            continue
        if not line.endswith(b"\n"):
            raise ConnectionError("a line over the maximum, or cut short")
        lines.append(line[:-1])
        return b"\n".join(lines).decode("utf-8")


def ask(prompt_line):
    """The user's next line; without echo when the server asks for a password."""
    if sys.stdin.isatty() and prompt_line.lower().endswith("password:"):
        return getpass.getpass("")
    return sys.stdin.readline()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    args = parser.parse_args()

    with socket.create_connection((args.host, args.port), timeout=30) as sock:
        f = sock.makefile("rb")
        message = recv_message(f)
        while message is not None:
            print(message, flush=True)
            line = ask(message.rsplit("\n", 1)[-1])
            if not line or line.strip() == "/quit":
                return 0
            sock.sendall(line.rstrip("\r\n").encode("utf-8") + b"\n")
            message = recv_message(f)
        print("the server closed the connection", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, UnicodeDecodeError) as e:
        print(f"line_client.py: {e}", file=sys.stderr)
        sys.exit(1)
