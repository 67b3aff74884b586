#!/usr/bin/env python3
"""make bench: netlab's echo server against points of comparison, on 127.0.0.1.

Tables, each comparing two servers that run side by side and get the same loads from
`netlab bench`:

1. netlab (framed) against a bare tokio + LengthDelimitedCodec baseline, then 10,000
   idle connections held by each, with peak RSS;
2. (--codecs) netlab with --codec lines against netlab framed: what the line codec costs;
3. (--before BIN) netlab framed against another netlab build, such as the previous
   release: a regression check (`make bench-before REV=...`);
4. (--tls) netlab framed inside TLS against plain netlab framed, then connections per
   second (connect, handshake, one echo, close) plain, TLS with session resumption and
   TLS with every handshake in full.

Each point runs twice (--rounds), once with each server first, and the rounds are
averaged: on two shared cores, whichever runs first does measurably differently.
Printed per point: messages/s, p99 latency and server CPU time per message (from
/proc) for each, and the ratio.

Everything stays on loopback, the whole run is bounded (--budget, default 9 minutes),
and every process it starts is stopped on the way out. Standard library only.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLAB = os.path.join(ROOT, "target", "release", "netlab")
BASELINE = os.path.join(ROOT, "target", "release", "examples", "baseline_echo")


class OutOfTime(Exception):
    pass


class Server:
    """A server process; `client_args` are what `netlab bench` needs to talk to it."""

    def __init__(self, name, argv, client_args, env=None):
        self.name = name
        self.client_args = client_args
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
        )
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            sys.exit(f"bench: {name} did not start (said {line!r})")
        self.port = line.strip().rsplit(":", 1)[1]

    @property
    def pid(self):
        return self.proc.pid

    def peak_rss_mib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def netlab_server(name, binary, data_dir, codec="framed", tls=False):
    env = dict(os.environ, XDG_DATA_HOME=data_dir)
    argv = [binary, "serve", "echo", "--port", "0", "--max-connections", "20000"]
    if codec != "framed":
        argv += ["--codec", codec]
    client = ["--codec", codec]
    if tls:
        argv.append("--tls")
        client.append("--tls")
    return Server(name, argv, client, env)


def baseline_server():
    return Server("baseline", [BASELINE, "0"], ["--no-greeting"])


def bench(server, extra, deadline):
    argv = [NETLAB, "bench", "--port", server.port, "--json", "--server-pid", str(server.pid)]
    argv += server.client_args
    run = subprocess.run(
        argv + extra, capture_output=True, text=True,
        timeout=max(10, deadline - time.monotonic()),
    )
    lines = run.stdout.strip().splitlines()
    if not lines:
        sys.exit(f"bench: no report from `{' '.join(argv + extra)}`: {run.stderr.strip()}")
    return json.loads(lines[-1])


def mean(reports):
    """Field by field; errors are summed, a missing CPU figure stays missing."""
    out = {}
    for key in ("messages_per_sec", "p99_us", "server_cpu_us_per_msg"):
        values = [r[key] for r in reports]
        out[key] = None if None in values else sum(values) / len(values)
    # "errors" counts every kind, failed connections included.
    out["errors"] = sum(r["errors"] for r in reports)
    return out


def ratio(a, b):
    return a / b if a and b else float("nan")


def compare(title, a, b, points, args, deadline):
    """Runs every (conns, size, pipeline) point against servers a and b; prints a row
    each, ratios as 'a better' > 1. Returns the error count."""
    print(f"\n{title}: {args.duration} per run after {args.warmup} warm-up, mean of "
          f"{args.rounds} rounds; ratio > 1: {a.name} better (for p99 and CPU: {b.name} / {a.name})")
    header = (f"{'conns':>5} {'size':>5} {'pipe':>4} | {'msgs/s ' + a.name:>15} {b.name:>10} "
              f"{'ratio':>5} | {'p99 us ' + a.name:>15} {b.name:>10} {'ratio':>5} | "
              f"{'CPU us/msg ' + a.name:>19} {b.name:>10} {'ratio':>5}")
    print(header)
    print("-" * len(header))
    errors = 0
    for n, (conns, size, pipe) in enumerate(points):
        if deadline - time.monotonic() < 30:
            raise OutOfTime
        extra = ["--conns", str(conns), "--size", str(size), "--pipeline", str(pipe),
                 "--duration", args.duration, "--warmup", args.warmup]
        runs = {a.name: [], b.name: []}
        for round_ in range(args.rounds):
            for s in ([a, b] if (n + round_) % 2 == 0 else [b, a]):
                runs[s.name].append(bench(s, extra, deadline))
        x, y = mean(runs[a.name]), mean(runs[b.name])
        errors += x["errors"] + y["errors"]
        xcpu = x["server_cpu_us_per_msg"] or float("nan")
        ycpu = y["server_cpu_us_per_msg"] or float("nan")
        print(f"{conns:>5} {size:>5} {pipe:>4} | {x['messages_per_sec']:>15,.0f} "
              f"{y['messages_per_sec']:>10,.0f} {ratio(x['messages_per_sec'], y['messages_per_sec']):>5.2f} | "
              f"{x['p99_us']:>15,.0f} {y['p99_us']:>10,.0f} {ratio(y['p99_us'], x['p99_us']):>5.2f} | "
              f"{xcpu:>19.2f} {ycpu:>10.2f} {ratio(ycpu, xcpu):>5.2f}", flush=True)
    return errors


def hold(args, data, deadline):
    """Each server, freshly started and alone, holds idle connections; peak RSS."""
    print(f"\n{args.hold:,} idle connections held for 5s, then each checked:")
    rss, errors = {}, 0
    for start in (lambda: netlab_server("netlab", NETLAB, data), baseline_server):
        server = start()
        try:
            r = bench(server, ["--hold", str(args.hold), "--duration", "5s"], deadline)
            rss[server.name] = server.peak_rss_mib()
            errors += r["errors"]
            print(f"  {server.name:<8} held {r['held']:,}, still echoing {r['still_echoing']:,}, "
                  f"peak RSS {rss[server.name]:.1f} MiB")
        finally:
            server.stop()
    print(f"  RSS ratio netlab / baseline: {ratio(rss.get('netlab'), rss.get('baseline')):.2f}")
    return errors


def handshakes(args, data, deadline):
    """Connections per second, each a full cycle: connect, (handshake,) greeting, one
    64-byte echo, close; 16 slots at once."""
    print(f"\nconnections per second, 16 slots, {args.duration} per run after {args.warmup} "
          f"warm-up, mean of {args.rounds} rounds:")
    plain = netlab_server("plain", NETLAB, data)
    tls = netlab_server("tls", NETLAB, data, tls=True)
    errors, first = 0, None
    try:
        for label, server, extra in (
            ("plain TCP", plain, []),
            ("TLS, resumed sessions", tls, []),
            ("TLS, full handshakes", tls, ["--tls-fresh"]),
        ):
            if deadline - time.monotonic() < 30:
                raise OutOfTime
            runs = [bench(server, ["--reconnect", "--conns", "16", "--duration", args.duration,
                                   "--warmup", args.warmup] + extra, deadline)
                    for _ in range(args.rounds)]
            m = mean(runs)
            errors += m["errors"]
            first = first or m["messages_per_sec"]
            print(f"  {label:<24} {m['messages_per_sec']:>8,.0f} conn/s   p99 {m['p99_us']:>7,.0f} us"
                  f"   server CPU {m['server_cpu_us_per_msg'] or float('nan'):>6.1f} us/conn"
                  f"   ratio to plain {ratio(m['messages_per_sec'], first):.2f}", flush=True)
    finally:
        plain.stop()
        tls.stop()
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="3s")
    parser.add_argument("--warmup", default="1s")
    parser.add_argument("--hold", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--budget", type=float, default=9 * 60, help="seconds, in all")
    parser.add_argument("--quick", action="store_true", help="16 and 256 connections only")
    parser.add_argument("--no-baseline", action="store_true", help="skip table 1")
    parser.add_argument("--codecs", action="store_true", help="table 2: lines against framed")
    parser.add_argument("--before", metavar="BIN", help="table 3: against this netlab build")
    parser.add_argument("--tls", action="store_true", help="table 4: TLS against plain")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget
    conns = [16, 256] if args.quick else [1, 16, 256, 1000]
    grid = [(c, size, pipe) for c in conns for size in (64, 4096) for pipe in (1, 16)]
    small = [(c, 64, pipe) for c in (16, 256) for pipe in (1, 16)]
    sizes = [(c, size, 1) for c in (16, 256) for size in (64, 4096)]

    for binary in (NETLAB, BASELINE, args.before or NETLAB):
        if not os.path.exists(binary):
            sys.exit(f"bench: {binary} is missing; run `make bench`")

    errors = 0
    with tempfile.TemporaryDirectory() as data:
        try:
            tables = []
            if not args.no_baseline:
                tables.append(("netlab vs baseline",
                               lambda: netlab_server("netlab", NETLAB, data),
                               baseline_server, grid))
            if args.codecs:
                tables.append(("netlab lines vs netlab framed",
                               lambda: netlab_server("lines", NETLAB, data, "lines"),
                               lambda: netlab_server("framed", NETLAB, data), small))
            if args.before:
                tables.append((f"this netlab vs {args.before}",
                               lambda: netlab_server("now", NETLAB, data),
                               lambda: netlab_server("before", args.before, data), small))
            if args.tls:
                tables.append(("netlab TLS vs netlab plain",
                               lambda: netlab_server("tls", NETLAB, data, tls=True),
                               lambda: netlab_server("plain", NETLAB, data), sizes))
            for title, start_a, start_b, points in tables:
                a, b = start_a(), start_b()
                try:
                    errors += compare(title, a, b, points, args, deadline)
                finally:
                    a.stop()
                    b.stop()
            if args.tls:
                errors += handshakes(args, data, deadline)
            if args.hold and not args.no_baseline:
                if deadline - time.monotonic() < 60:
                    raise OutOfTime
                errors += hold(args, data, deadline)
        except OutOfTime:
            print("bench: time budget spent; stopping early")

    if errors:
        sys.exit(f"bench: {errors} errors or failed connections")


if __name__ == "__main__":
    main()
