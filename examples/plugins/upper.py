#!/usr/bin/env python3
"""An upper-case echo: a netlab mode in a few lines of Python (standard library only).

    netlab serve exec -- python3 examples/plugins/upper.py

netlab runs it once per connection: its first line is the greeting, then each message
arrives as one line on stdin and each line printed is the answer. A message's own
newlines and backslashes arrive as \\n and \\\\; printing them that way sends them back.
"""

import os
import sys

print(f"upper-case echo; you are {os.environ['NETLAB_PEER_IP']}", flush=True)
for line in sys.stdin:
    print(line.rstrip("\n").upper(), flush=True)
