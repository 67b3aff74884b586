#!/usr/bin/env python3
"""A netlab client in plain Python (standard library only), written from docs/PROTOCOL.md.

    python3 examples/client.py --host 127.0.0.1 --port 9090
    python3 examples/client.py --port 9090 --tls --fingerprint sha256:HEX   (serve --tls)
    python3 examples/client.py --host NAME --port 9090 --tls --cafile ca.pem

It shows the server's greeting, then sends each line typed (or piped in) as one message
and shows the reply, until end of input, /quit, or the server closes the connection. On a
terminal, the answer to a question ending in "Password:" is read without echo.
Exit status 0 after end of input or /quit; 1 if the server closed first, or on an error.
"""

import argparse
import getpass
import hashlib
import hmac
import socket
import ssl
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


def wrap_tls(sock, args):
    """TLS over `sock`. With --cafile the certificate chain and the host name are checked
    as a browser would; with --fingerprint, the certificate must be exactly the one whose
    SHA-256 `netlab tls fingerprint` (or `serve --tls`) printed. Nothing is sent before."""
    if args.cafile:
        context = ssl.create_default_context(cafile=args.cafile)
        return context.wrap_socket(sock, server_hostname=args.host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the fingerprint below is the check
    tls = context.wrap_socket(sock, server_hostname=args.host)
    seen = "sha256:" + hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
    if not hmac.compare_digest(seen, args.fingerprint.lower()):
        tls.close()
        raise ConnectionError(f"the server's certificate is {seen}, not {args.fingerprint}")
    return tls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--tls", action="store_true", help="speak TLS (serve --tls)")
    parser.add_argument("--cafile", help="with --tls: trust certificates this CA signed")
    parser.add_argument("--fingerprint", help="with --tls: trust exactly this certificate")
    args = parser.parse_args()
    if args.tls and not (args.cafile or args.fingerprint):
        parser.error("--tls needs --cafile or --fingerprint (see netlab tls fingerprint)")

    with socket.create_connection((args.host, args.port), timeout=30) as plain:
        if not args.tls:
            return talk(plain)
        tls = wrap_tls(plain, args)
        try:
            return talk(tls)
        finally:
            try:
                tls.unwrap()  # close_notify: the server sees an orderly end
            except OSError:
                pass


def talk(sock):
    """The conversation: greeting, then a message for each line, until one side ends."""
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
    except (OSError, ProtocolError, UnicodeDecodeError) as e:  # ssl.SSLError is an OSError
        print(f"client.py: {e}", file=sys.stderr)
        sys.exit(1)
