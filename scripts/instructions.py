#!/usr/bin/env python3
"""Server instructions per echoed message, counted by valgrind's callgrind.

    python3 scripts/instructions.py [--before OLD_NETLAB]

On a shared machine, timings of the same build move by 5-10% from run to run;
instruction counts barely do (back to back, the same figure to within a few
instructions; hours apart, within about 2%). For each codec, and for an older build if given, the echo server
runs under callgrind while one client sends N and then 2N 64-byte messages, pipelined 16
at a time; the difference between the two totals, divided by N, is the cost of one
message with start-up and shutdown cancelled out.

Needs valgrind. Everything stays on 127.0.0.1. Standard library only.
"""

import argparse
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLAB = os.path.join(ROOT, "target", "release", "netlab")
SIZE, BATCH = 64, 16


def converse(port, messages, codec):
    """Echoes `messages` messages, BATCH at a time, checking every reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        f = sock.makefile("rb")
        msg = b"x" * SIZE
        if codec == "framed":
            (length,) = struct.unpack("!I", f.read(4))
            f.read(length)
            one = struct.pack("!I", SIZE) + msg
        else:
            while not f.readline().endswith(b"\n"):
                pass
            one = msg + b"\n"
        batch = one * BATCH
        for _ in range(messages // BATCH):
            sock.sendall(batch)
            if f.read(len(batch)) != batch:
                sys.exit("instructions: a wrong echo")


def total_instructions(binary, codec, messages):
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "callgrind.out")
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
             binary, "serve", "echo", "--codec", codec, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, XDG_DATA_HOME=tmp),
        )
        try:
            line = server.stdout.readline()
            if not line.startswith("listening on "):
                sys.exit(f"instructions: {binary} did not start (said {line!r})")
            converse(int(line.rsplit(":", 1)[1]), messages, codec)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        with open(out_file) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
    sys.exit("instructions: no total in the callgrind output")


def per_message(binary, codec, n):
    return (total_instructions(binary, codec, 2 * n) - total_instructions(binary, codec, n)) / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="BIN", help="an older netlab build to compare")
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    if subprocess.run(["which", "valgrind"], capture_output=True).returncode != 0:
        sys.exit("instructions: valgrind is not installed")

    started = time.monotonic()
    rows = [("framed", NETLAB), ("lines", NETLAB)]
    if args.before:
        rows.append(("framed", args.before))
    counts = {}
    print(f"server instructions per echoed {SIZE}-byte message, pipelined {BATCH} at a time:")
    for codec, binary in rows:
        counts[(codec, binary)] = per_message(binary, codec, args.messages)
        label = "this build" if binary == NETLAB else binary
        print(f"  {codec:<7} {label:<12} {counts[(codec, binary)]:>8,.0f}", flush=True)
    framed = counts[("framed", NETLAB)]
    print(f"  lines / framed: {counts[('lines', NETLAB)] / framed:.3f}")
    if args.before:
        print(f"  framed, this build / before: {framed / counts[('framed', args.before)]:.3f}")
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
