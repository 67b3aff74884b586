#!/usr/bin/env python3
"""Guess the number, with each player's best score kept across connections.

    netlab serve auth --exec -- python3 examples/plugins/guess.py     # players sign in
    netlab serve exec -- python3 examples/plugins/guess.py            # players by address

The player is NETLAB_USER (auth), NETLAB_NAME (ident) or the address. Best scores are
kept in GUESS_SCORES (pass it with --pass-env GUESS_SCORES), or in
~/.local/share/netlab/guess-scores.json, updated under a lock and replaced atomically.
"""

import fcntl
import json
import os
import random
import sys

player = os.environ.get("NETLAB_USER") or os.environ.get("NETLAB_NAME") or os.environ["NETLAB_PEER_IP"]
path = os.environ.get("GUESS_SCORES") or os.path.join(
    os.environ.get("HOME", "."), ".local", "share", "netlab", "guess-scores.json"
)


def best_scores(update=None):
    """The scores; with `update` (a number of tries), records it if it is the best."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path) as f:
                scores = json.load(f)
        except (FileNotFoundError, ValueError):
            scores = {}
        if update is not None and update < scores.get(player, float("inf")):
            scores[player] = update
            with open(path + ".tmp", "w") as f:
                json.dump(scores, f)
            os.replace(path + ".tmp", path)
        return scores


secret = random.randint(1, 100)
tries = 0
best = best_scores().get(player)
print(f"Guess my number from 1 to 100, {player}." + (f" Your best: {best} tries." if best else ""), flush=True)
for line in sys.stdin:
    try:
        guess = int(line.strip())
    except ValueError:
        print("a whole number from 1 to 100, please", flush=True)
        continue
    tries += 1
    if guess < secret:
        print("higher", flush=True)
    elif guess > secret:
        print("lower", flush=True)
    else:
        record = best_scores(tries).get(player)
        new_best = best is None or tries < best
        note = " A new best!" if new_best else f" Your best: {record} tries."
        print(f"Right, in {tries} tries.{note} A new number is chosen.", flush=True)
        secret, tries, best = random.randint(1, 100), 0, record
