#!/usr/bin/env python3
"""make bench-plugins: what `netlab serve exec` adds to a program, on 127.0.0.1.

The program is `sh -c 'echo hi; exec cat'`: a greeting, then cat, compiled, which echoes
every line. Measured, each a median over many runs:

1. per connection: a full cycle (connect, greeting, one echo, close) one at a time
   through `serve exec`, against the program's own start (spawn it, read its greeting,
   close it, from here) and against a cycle through `serve echo` (no program);
2. per message: one round trip through `serve exec` (client -> netlab -> cat -> netlab
   -> client), against a round trip through a direct pipe to the same program, and
   against `serve echo`.

Targets (issue 13): netlab adds under 1 ms per connection beyond the program's start,
and under 50 us per message round trip beyond the direct pipe. Standard library only;
every process it starts is stopped.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLAB = os.path.join(ROOT, "target", "release", "netlab")
PROGRAM = ["sh", "-c", "echo hi; exec cat"]


def serve(args, data):
    env = dict(os.environ, XDG_DATA_HOME=data)
    proc = subprocess.Popen([NETLAB, "serve"] + args + ["--port", "0"] if "--" not in args else
                            [NETLAB, "serve"] + args[: args.index("--")] + ["--port", "0"] + args[args.index("--"):],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        sys.exit(f"plugin_bench: the server did not start: {line!r}")
    return proc, line.strip().rsplit(":", 1)[1]


def bench(port, extra):
    run = subprocess.run([NETLAB, "bench", "--port", port, "--json", "--duration", "3s",
                          "--warmup", "500ms"] + extra, capture_output=True, text=True, timeout=60)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    if report["errors"]:
        sys.exit(f"plugin_bench: errors: {report}")
    return report


def program_start_ms(n=300):
    """Spawn the program, read its greeting, close its stdin, wait for it."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        p = subprocess.Popen(PROGRAM, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        p.stdout.readline()
        p.stdin.close()
        p.wait()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def pipe_rtt_us(n=20000):
    """One line to the program and its echo back, over pipes, from here."""
    p = subprocess.Popen(PROGRAM, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    p.stdout.readline()
    line = b"x" * 64 + b"\n"
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        p.stdin.write(line)
        got = p.stdout.readline()
        times.append((time.perf_counter_ns() - t) / 1000)
        assert got == line
    p.stdin.close()
    p.wait()
    return statistics.median(times)


def main():
    if not os.path.exists(NETLAB):
        sys.exit("plugin_bench: build first: cargo build --release --bin netlab")
    with tempfile.TemporaryDirectory() as data:
        exec_server, exec_port = serve(["exec", "--max-connections", "4096", "--"] + PROGRAM, data)
        echo_server, echo_port = serve(["echo", "--max-connections", "4096"], data)
        try:
            start = program_start_ms()
            cyc_exec = bench(exec_port, ["--reconnect", "--conns", "1"])
            cyc_echo = bench(echo_port, ["--reconnect", "--conns", "1"])
            rate_exec = bench(exec_port, ["--reconnect", "--conns", "16"])
            rtt_pipe = pipe_rtt_us()
            rtt_exec = bench(exec_port, ["--conns", "1"])
            rtt_echo = bench(echo_port, ["--conns", "1"])
        finally:
            for proc in (exec_server, echo_server):
                proc.terminate()
                proc.wait(timeout=10)
    cycle_exec_ms = cyc_exec["p50_us"] / 1000
    cycle_echo_ms = cyc_echo["p50_us"] / 1000
    added_conn = cycle_exec_ms - start
    added_msg = rtt_exec["p50_us"] - rtt_pipe
    print("per connection (medians, one at a time):")
    print(f"  program start alone (spawn, greeting, exit)  {start:7.2f} ms")
    print(f"  cycle through serve exec                     {cycle_exec_ms:7.2f} ms")
    print(f"  cycle through serve echo (no program)        {cycle_echo_ms:7.2f} ms")
    print(f"  netlab's part: exec cycle - program start    {added_conn:7.2f} ms   (target < 1 ms)")
    print(f"  exec cycle - echo cycle                      {cycle_exec_ms - cycle_echo_ms:7.2f} ms   "
          "(the program's start, and netlab's part)")
    print(f"  serve exec, 16 at once: {rate_exec['messages_per_sec']:,.0f} connections/s; "
          f"serve echo one at a time: {cyc_echo['messages_per_sec']:,.0f}/s")
    print("per message (median round trip, 64 bytes):")
    print(f"  direct pipe to the program                   {rtt_pipe:7.1f} us")
    print(f"  through serve exec                           {rtt_exec['p50_us']:7.1f} us")
    print(f"  through serve echo (no program)              {rtt_echo['p50_us']:7.1f} us")
    print(f"  netlab's part: exec - direct pipe            {added_msg:7.1f} us   (target < 50 us)")
    print(f"  exec - echo                                  {rtt_exec['p50_us'] - rtt_echo['p50_us']:7.1f} us   "
          "(two pipe hops and the program's own work)")
    print("(The direct pipe and the program start are timed from Python, which is slower at\n"
          " both than netlab: a negative \"netlab's part\" means netlab adds less than that.)")


if __name__ == "__main__":
    main()
