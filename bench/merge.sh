#!/usr/bin/env bash
# bench/merge.sh: merge N squashfs images with earlyext, with ../shared/bench/floor.c (the least a
# merge can do: loop devices, detached mounts, one lowerdir+ overlay, the beneath swap) and with the
# host's systemd-sysext, each in a fresh private mount namespace (../shared/bench/inns.sh), all in
# one run. Prints medians and ratios. Usage: bench/merge.sh [N...]   (RUNS=7 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED:-../shared/bench}
runs=${RUNS:-7}
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(1 16 64)
earlyext=${EARLYEXT:-.build/release/earlyext}
work=${BENCH_DIR:-/tmp/earlyext-bench}
mkdir -p "$work"
[ -x "$earlyext" ] || { echo "bench: $earlyext missing (make release)" >&2; exit 1; }
[ "$work/floor" -nt "$shared/floor.c" ] 2>/dev/null || gcc -O2 -o "$work/floor" "$shared/floor.c"

# One timed command inside the namespace; prints microseconds, or "fail".
timed() { # ROOTSRC SETUP CMD
  "$shared/inns.sh" "$1" bash -c "$2
    s=\$(date +%s%N); if $3 >/dev/null 2>&1; then e=\$(date +%s%N); echo \$(( (e - s) / 1000 )); else echo fail; fi"
}
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "fail"; else print a[int((NR + 1) / 2)] }'; }
ms() { [ "$1" = fail ] && echo fail || awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
ratio() { { [ "$1" = fail ] || [ "$2" = fail ]; } && echo "-" || awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

bind_usr='mount --bind /tmp/inns-root/usr /tmp/inns-root/usr; mount --make-private /tmp/inns-root/usr'
printf '%-5s %12s %12s %16s %12s %14s\n' N earlyext_ms floor_ms systemd-sysext_ms vs_floor sysext/earlyext
for n in "${counts[@]}"; do
  root=$work/root-$n
  [ -d "$root/etc/extensions" ] && [ "$(ls "$root/etc/extensions" | wc -l)" = "$n" ] || bash "$shared/mkexts.sh" "$root" "$n" >/dev/null
  e=(); f=(); s=()
  for _ in $(seq "$runs"); do
    e+=("$(timed "$root" "$bind_usr" "$PWD/$earlyext --root /tmp/inns-root --state-dir /run/earlyext merge")")
    f+=("$(timed "$root" "$bind_usr" "$work/floor /tmp/inns-root /tmp/inns-root/etc/extensions/*.raw")")
    # systemd-sysext 252 takes seconds at 64 and fails at 128: fewer runs there.
    if [ "$n" -le 64 ] && [ ${#s[@]} -lt 3 ]; then
      s+=("$(timed "$root" "" "systemd-sysext --root=/tmp/inns-root merge")")
    fi
  done
  em=$(printf '%s\n' "${e[@]}" | grep -v fail | median)
  fm=$(printf '%s\n' "${f[@]}" | grep -v fail | median)
  sm=$( [ ${#s[@]} -gt 0 ] && printf '%s\n' "${s[@]}" | grep -v fail | median || echo fail)
  printf '%-5s %12s %12s %16s %12s %14s\n' "$n" "$(ms "$em")" "$(ms "$fm")" "$(ms "$sm")" "$(ratio "$em" "$fm")" "$(ratio "$sm" "$em")"
done
echo "(medians of $runs runs, timed inside the namespace around the merge command only; systemd-sysext: 3 runs, N <= 64)"
