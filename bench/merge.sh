#!/usr/bin/env bash
# bench/merge.sh [N...]: merge N squashfs images with earlyext, with ../shared/bench/floor.c (the
# least a merge can do: loop devices, detached mounts, one lowerdir+ overlay, the beneath swap) and
# with the host's systemd-sysext, each in a fresh private mount namespace (../shared/bench/inns.sh),
# all in one run, interleaved. Prints a table; with CSV=FILE also writes "n,tool,median_us,runs".
# RUNS=7 by default. systemd-sysext gets 3 runs (it takes seconds) and is expected to fail at 128.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(1 16 64)
[ -z "${CSV:-}" ] || echo "n,tool,median_us,runs" > "$CSV"

printf '%-5s %12s %12s %18s %10s %16s\n' N earlyext_ms floor_ms systemd-sysext_ms vs_floor sysext/earlyext
for n in "${counts[@]}"; do
  root=$(bench_root "$n")
  e=(); f=(); s=()
  for _ in $(seq "$RUNS"); do
    e+=("$(timed "$root" "$BIND_USR" "$EARLYEXT --root /tmp/inns-root --state-dir /run/earlyext merge")")
    f+=("$(timed "$root" "$BIND_USR" "$FLOOR /tmp/inns-root /tmp/inns-root/etc/extensions/*.raw")")
    if [ ${#s[@]} -lt 3 ] && { [ "$n" -le 64 ] || [ ${#s[@]} -lt 1 ]; }; then
      s+=("$(timed "$root" "" "systemd-sysext --root=/tmp/inns-root merge")")
    fi
  done
  em=$(printf '%s\n' "${e[@]}" | median); fm=$(printf '%s\n' "${f[@]}" | median); sm=$(printf '%s\n' "${s[@]}" | median)
  printf '%-5s %12s %12s %18s %10s %16s\n' "$n" "$(ms "$em")" "$(ms "$fm")" "$(ms "$sm")" "$(ratio "$em" "$fm")" "$(ratio "$sm" "$em")"
  if [ -n "${CSV:-}" ]; then
    printf '%s,earlyext,%s,%s\n%s,floor,%s,%s\n%s,systemd-sysext,%s,%s\n' "$n" "$em" "${#e[@]}" "$n" "$fm" "${#f[@]}" "$n" "$sm" "${#s[@]}" >> "$CSV"
  fi
done
echo "(medians of $RUNS runs, timed inside the namespace around the merge command only)"
