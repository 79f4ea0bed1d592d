#!/usr/bin/env bash
# configs.sh [--hashes]: regenerates every boot/scenarios/*/config.ign from its
# config.bu (boot/butane.py). With --hashes it first rewrites, in each config.bu,
# the sha256 of every image served from http://10.0.2.100:8080/ (an Ignition
# source's verification.hash, or the SHA256= after a selection file's Url=) to
# the hash of the image boot/build-extensions.sh builds now (do this after changing
# boot/extensions/). Both files are committed; `make boot-test` checks they agree.
source "$(dirname "$0")/lib.sh"
if [[ ${1:-} == --hashes ]]; then
  need_root  # the kernel package (cached) feeds the kernel-module images
  ext=$(bash "$EE_REPO/boot/build-extensions.sh" "$(bash "$EE_REPO/boot/build-kernel.sh")")
  for bu in "$EE_REPO"/boot/scenarios/*/config.bu; do
    python3 - "$bu" "$ext/SHA256SUMS" <<'PY'
import re, sys
bu, sums = sys.argv[1], dict(reversed(l.split()) for l in open(sys.argv[2]) if l.strip())
lines, url = open(bu).read().split("\n"), None
for i, l in enumerate(lines):
    # Ignition's source + verification.hash, and a selection file's Url= + SHA256=
    # (written inline into the config).
    m = re.search(r"(?:source:\s*|Url=)http://10\.0\.2\.100:8080/(\S+)", l)
    if m:
        url = m.group(1); continue
    m = re.match(r"(\s*hash:\s*sha256-|\s*SHA256=)[0-9a-f]{64}(.*)$", l)
    if m and url:
        if url not in sums:
            sys.exit(f"{bu}: {url} is not built by boot/build-extensions.sh")
        lines[i] = f"{m.group(1)}{sums[url]}{m.group(2)}"; url = None
open(bu, "w").write("\n".join(lines))
PY
  done
fi
for bu in "$EE_REPO"/boot/scenarios/*/config.bu; do
  python3 "$EE_REPO/boot/butane.py" -d "$EE_REPO/boot/scenarios" "$bu" -o "${bu%.bu}.ign"
  log "configs: ${bu#"$EE_REPO"/} -> config.ign"
done
