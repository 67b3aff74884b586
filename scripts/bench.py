#!/usr/bin/env python3
"""make bench: netlab's echo server against a bare tokio + LengthDelimitedCodec baseline.

Both servers run side by side on 127.0.0.1 and get the same loads from `netlab bench`,
each point twice (--rounds), once with each server first, and the rounds averaged: on
two shared cores, whichever runs first does measurably differently. Printed per point: messages/s, p99 latency
and server CPU time per message (from /proc) for each, and netlab's ratio. Then each
server, freshly started, holds 10,000 idle connections, and its peak RSS is printed.

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


class Server:
    def __init__(self, name, argv, env=None):
        self.name = name
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


def start_servers(data_dir):
    env = dict(os.environ, XDG_DATA_HOME=data_dir)
    netlab = Server(
        "netlab",
        [NETLAB, "serve", "echo", "--port", "0", "--max-connections", "20000"],
        env,
    )
    baseline = Server("baseline", [BASELINE, "0"])
    return netlab, baseline


def bench(server, extra, budget_left):
    argv = [NETLAB, "bench", "--port", server.port, "--json", "--server-pid", str(server.pid)]
    if server.name == "baseline":
        argv.append("--no-greeting")
    run = subprocess.run(
        argv + extra, capture_output=True, text=True, timeout=max(10, budget_left)
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
    for key in ("errors", "connect_failures"):
        out[key] = sum(r[key] for r in reports)
    return out


def ratio(a, b):
    return a / b if b else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="3s")
    parser.add_argument("--warmup", default="1s")
    parser.add_argument("--hold", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--budget", type=float, default=9 * 60, help="seconds, in all")
    parser.add_argument("--quick", action="store_true", help="16 and 256 connections only")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget
    conns = [16, 256] if args.quick else [1, 16, 256, 1000]

    for binary in (NETLAB, BASELINE):
        if not os.path.exists(binary):
            sys.exit(f"bench: {binary} is missing; run `make bench`")

    errors = 0
    with tempfile.TemporaryDirectory() as data:
        netlab, baseline = start_servers(data)
        try:
            print(f"netlab vs baseline, {args.duration} per run after {args.warmup} warm-up, "
                  f"mean of {args.rounds} rounds; ratio > 1: netlab better "
                  "(for p99 and CPU: baseline / netlab)")
            header = (f"{'conns':>5} {'size':>5} {'pipe':>4} | {'msgs/s netlab':>13} {'baseline':>10} "
                      f"{'ratio':>5} | {'p99 us netlab':>13} {'baseline':>9} {'ratio':>5} | "
                      f"{'CPU us/msg netlab':>17} {'baseline':>8} {'ratio':>5}")
            print(header)
            print("-" * len(header))
            point = 0
            for c in conns:
                for size in (64, 4096):
                    for pipe in (1, 16):
                        left = deadline - time.monotonic()
                        if left < 30:
                            print("bench: time budget spent; stopping early")
                            raise StopIteration
                        extra = ["--conns", str(c), "--size", str(size), "--pipeline", str(pipe),
                                 "--duration", args.duration, "--warmup", args.warmup]
                        runs = {"netlab": [], "baseline": []}
                        for round_ in range(args.rounds):
                            order = [netlab, baseline] if (point + round_) % 2 == 0 else [baseline, netlab]
                            for s in order:
                                runs[s.name].append(bench(s, extra, deadline - time.monotonic()))
                        point += 1
                        n, b = mean(runs["netlab"]), mean(runs["baseline"])
                        errors += n["errors"] + b["errors"] + n["connect_failures"] + b["connect_failures"]
                        ncpu = n["server_cpu_us_per_msg"] or float("nan")
                        bcpu = b["server_cpu_us_per_msg"] or float("nan")
                        print(f"{c:>5} {size:>5} {pipe:>4} | {n['messages_per_sec']:>13,.0f} "
                              f"{b['messages_per_sec']:>10,.0f} {ratio(n['messages_per_sec'], b['messages_per_sec']):>5.2f} | "
                              f"{n['p99_us']:>13,.0f} {b['p99_us']:>9,.0f} {ratio(b['p99_us'], n['p99_us']):>5.2f} | "
                              f"{ncpu:>17.2f} {bcpu:>8.2f} {ratio(bcpu, ncpu):>5.2f}", flush=True)
        except StopIteration:
            pass
        finally:
            netlab.stop()
            baseline.stop()

        if args.hold and deadline - time.monotonic() > 60:
            print(f"\n{args.hold:,} idle connections held for 5s, then each checked:")
            rss = {}
            for name in ("netlab", "baseline"):
                netlab, baseline = start_servers(data)
                server = netlab if name == "netlab" else baseline
                other = baseline if name == "netlab" else netlab
                other.stop()
                try:
                    r = bench(server, ["--hold", str(args.hold), "--duration", "5s"],
                              deadline - time.monotonic())
                    rss[name] = server.peak_rss_mib()
                    errors += r["errors"] + r["connect_failures"]
                    print(f"  {name:<8} held {r['held']:,}, still echoing {r['still_echoing']:,}, "
                          f"peak RSS {rss[name]:.1f} MiB")
                finally:
                    server.stop()
            print(f"  RSS ratio netlab / baseline: {ratio(rss['netlab'], rss['baseline']):.2f}")

    if errors:
        sys.exit(f"bench: {errors} errors or failed connections")


if __name__ == "__main__":
    main()
