#!/usr/bin/env python3
"""reader.py STOPFILE OUTFILE PATH...: open and read each PATH in a tight loop until STOPFILE
exists; then write "reads failures first-error" to OUTFILE. Used by the gap tests: during
refreshes, every read must succeed."""
import os, sys
stop, out, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
reads = failures = 0
first = ""
while not os.path.exists(stop):
    for p in paths:
        try:
            with open(p, "rb") as f:
                if not f.read():
                    raise OSError("empty read")
            reads += 1
        except OSError as e:
            failures += 1
            first = first or f"{p}: {e}"
with open(out, "w") as f:
    f.write(f"{reads} {failures} {first}\n")
