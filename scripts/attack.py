#!/usr/bin/env python3
"""make attack: password guessing against `netlab serve auth`, as an attacker would do it.

One account is attacked by 200 connections that guess as fast as the server answers
(each: the name, then wrong passwords, then a new connection), first all from one
address, then spread over 200 addresses (127.0.1.1 to 127.0.1.200). Meanwhile another
user signs in now and then. Printed for each scenario:

- the password checks the server really performed for the attacked account (its log's
  "wrong password" lines), and those the penalty schedule allows in the same time;
- the legitimate user's sign-in time, against the same measured with no attack.

The server runs with its defaults (scrypt N = 2^17, 32 connections per address), on
127.0.0.1, in a scratch directory. Standard library only.
"""

import argparse
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLAB = os.path.join(ROOT, "target", "release", "netlab")
USER, PASSWORD = "alice", "correct-horse-1"

# The penalty schedule (src/store/attempts.rs): free failures, then waits of 1 s
# doubling to 15 minutes; one source counts for at most 5 of an account's failures.
SOURCE_FREE, ACCOUNT_FREE, MAX_WAIT = 5, 20, 900


def allowed(free, seconds):
    """Checks the schedule allows in `seconds` to an attacker that never pauses."""
    checks, t, wait = free, 0.0, 1
    while True:
        t += wait
        if t > seconds:
            return checks
        checks += 1
        wait = min(wait * 2, MAX_WAIT)


def send(sock, text):
    payload = text.encode()
    sock.sendall(struct.pack("!I", len(payload)) + payload)


def recv(sock):
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            return None
        header += chunk
    (length,) = struct.unpack("!I", header)
    payload = b""
    while len(payload) < length:
        chunk = sock.recv(length - len(payload))
        if not chunk:
            return None
        payload += chunk
    return payload.decode()


def connect(port, source):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def converse(port, source, lines):
    """Sends each line after reading a message; returns the last message."""
    with connect(port, source) as sock:
        reply = recv(sock)
        for line in lines:
            send(sock, line)
            reply = recv(sock)
        return reply


def sign_in_time(port):
    started = time.monotonic()
    reply = converse(port, "127.0.0.250", [USER, PASSWORD])
    took = time.monotonic() - started
    if not reply or not reply.startswith("Welcome"):
        sys.exit(f"attack: the legitimate user was not signed in: {reply!r}")
    return took


def attacker(port, source, victim, stop, counts):
    while not stop.is_set():
        try:
            with connect(port, source) as sock:
                if not (recv(sock) or "").endswith("Username:"):
                    counts["refused"] += 1  # over the per-address cap
                    time.sleep(0.05)
                    continue
                send(sock, victim)
                recv(sock)
                while not stop.is_set():
                    send(sock, "wrong-guess-%d" % counts["guesses"])
                    counts["guesses"] += 1
                    if recv(sock) != "Wrong password. Password:":
                        break
        except OSError:
            time.sleep(0.05)


def checks_so_far(log_path, victim):
    with open(log_path) as f:
        return f.read().count('wrong password for "%s"' % victim)


def scenario(name, port, log_path, sources, seconds, baseline):
    """Registers a fresh account from an address of its own, attacks it, reports."""
    victim = "victim%d" % len(sources)
    reply = converse(port, "127.0.0.%d" % (10 + len(sources) % 200), [victim, PASSWORD, PASSWORD])
    if not reply.startswith("Welcome"):
        sys.exit(f"attack: could not register {victim}: {reply!r}")
    stop = threading.Event()
    counts = {"guesses": 0, "refused": 0}
    before = checks_so_far(log_path, victim)
    threads = [
        threading.Thread(target=attacker,
                         args=(port, sources[i % len(sources)], victim, stop, counts))
        for i in range(200)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    latencies = []
    while time.monotonic() - started < seconds:
        time.sleep(1)
        latencies.append(sign_in_time(port))
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    checks = checks_so_far(log_path, victim) - before
    free = SOURCE_FREE if len(sources) == 1 else ACCOUNT_FREE
    print(f"\n{name}: 200 connections from {len(sources)} address(es), {elapsed:.0f} s")
    print(f"  guesses sent                {counts['guesses']:>8,}"
          f"   (connections refused at the per-address cap: {counts['refused']:,})")
    print(f"  password checks performed   {checks:>8,}   (the schedule allows {allowed(free, elapsed)})")
    print(f"  checks per hour, projected  {allowed(free, 3600):>8,}   per day {allowed(free, 86400):,}"
          "   (from the schedule, which the measurement follows)")
    print(f"  legitimate sign-in          median {statistics.median(latencies) * 1000:,.0f} ms, "
          f"max {max(latencies) * 1000:,.0f} ms   (no attack: median "
          f"{statistics.median(baseline) * 1000:,.0f} ms, max {max(baseline) * 1000:,.0f} ms)")
    return checks <= allowed(free, elapsed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="per scenario")
    parser.add_argument("--scrypt-log-n", default="17")
    args = parser.parse_args()
    if not os.path.exists(NETLAB):
        sys.exit(f"attack: {NETLAB} is missing; run `make attack`")

    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [NETLAB, "serve", "auth", "--port", "0", "--scrypt-log-n", args.scrypt_log_n,
             "--db", os.path.join(data, "netlab.db")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, XDG_DATA_HOME=data),
        )
        try:
            line = server.stdout.readline()
            if not line.startswith("listening on "):
                sys.exit(f"attack: the server did not start (said {line!r})")
            port = int(line.rsplit(":", 1)[1])
            log_path = os.path.join(data, "netlab", "netlab.log")
            reply = converse(port, "127.0.0.250", [USER, PASSWORD, PASSWORD])
            if not reply.startswith("Welcome"):
                sys.exit(f"attack: could not register {USER}: {reply!r}")
            baseline = [sign_in_time(port) for _ in range(10)]
            print(f"netlab serve auth, scrypt N = 2^{args.scrypt_log_n}, default limits")
            ok = scenario("one address", port, log_path, ["127.0.0.2"], args.seconds, baseline)
            sources = [f"127.0.1.{i}" for i in range(1, 201)]
            ok &= scenario("spread", port, log_path, sources, args.seconds, baseline)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    if not ok:
        sys.exit("attack: more checks than the schedule allows")


if __name__ == "__main__":
    main()
