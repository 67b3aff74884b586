#!/usr/bin/env python3
"""Shows a netlab frame on the wire: sends "привет" in 3-byte pieces, prints the bytes.

    python3 examples/frame_bytes.py --port 9090
"""

import argparse
import socket
import struct


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


def read_frame(sock):
    header = read_exact(sock, 4)
    (length,) = struct.unpack("!I", header)
    return header, read_exact(sock, length)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--text", default="привет")
    args = parser.parse_args()

    with socket.create_connection((args.host, args.port), timeout=10) as sock:
        read_frame(sock)  # the greeting
        payload = args.text.encode("utf-8")
        frame = struct.pack("!I", len(payload)) + payload
        print(f"text      {args.text!r}: {len(args.text)} characters, {len(payload)} bytes")
        print(f"sent      {frame.hex(' ')}   (in pieces of 3 bytes)")
        for i in range(0, len(frame), 3):
            sock.sendall(frame[i : i + 3])
        header, reply = read_frame(sock)
        print(f"received  {(header + reply).hex(' ')}   -> {reply.decode('utf-8')!r}")


if __name__ == "__main__":
    main()
