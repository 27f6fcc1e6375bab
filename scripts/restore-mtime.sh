#!/usr/bin/env bash
# Sets each tracked file under the given folders to the time of the last commit that changed it
# (a fresh clone stamps them all "now", which makes cargo rebuild path dependencies). Files with
# uncommitted changes keep their mtime.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
git log --format='@%ct' --name-only --no-renames -- "$@" | python3 -c '
import os, subprocess, sys
dirty = set(subprocess.run(["git", "status", "--porcelain", "-z"], capture_output=True,
                           check=True).stdout.decode().split("\0"))
dirty = {entry[3:] for entry in dirty if entry}
seen, stamp = set(), None
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith("@"):
        stamp = int(line[1:])
    elif line and line not in seen:
        seen.add(line)
        if line not in dirty and os.path.isfile(line):
            os.utime(line, (stamp, stamp))
'
