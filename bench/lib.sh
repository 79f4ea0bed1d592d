# Shared by the bench scripts. Sourced from the repository root.
SHARED=${SHARED:-../shared/bench}
RUNS=${RUNS:-7}
EARLYEXT=${EARLYEXT:-$PWD/.build/release/earlyext}
WORK=${BENCH_DIR:-/tmp/earlyext-bench}
mkdir -p "$WORK"
[ -x "$EARLYEXT" ] || { echo "bench: $EARLYEXT missing (make release)" >&2; exit 1; }
FLOOR=$WORK/floor
[ "$FLOOR" -nt "$SHARED/floor.c" ] 2>/dev/null || gcc -O2 -o "$FLOOR" "$SHARED/floor.c"
# ROOT/usr as a private bind mount, so that the floor (which needs a mount point) and earlyext
# do the same beneath swap.
BIND_USR='mount --bind /tmp/inns-root/usr /tmp/inns-root/usr; mount --make-private /tmp/inns-root/usr'

# bench_root N: a fake root with N squashfs images (../shared/bench/mkexts.sh), cached.
bench_root() {
  local root=$WORK/root-$1
  if [ ! -d "$root/etc/extensions" ] || [ "$(ls "$root/etc/extensions" | wc -l)" != "$1" ]; then
    bash "$SHARED/mkexts.sh" "$root" "$1" >/dev/null
  fi
  echo "$root"
}
# timed ROOTSRC SETUP CMD: one run inside a fresh namespace; prints microseconds or "fail".
timed() {
  "$SHARED/inns.sh" "$1" bash -c "$2
    s=\$(date +%s%N); if $3 >/dev/null 2>&1; then e=\$(date +%s%N); echo \$(( (e - s) / 1000 )); else echo fail; fi"
}
median() { grep -v fail | sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "fail"; else print a[int((NR + 1) / 2)] }'; }
ms() { [ "$1" = fail ] && echo fail || awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
ratio() { { [ "$1" = fail ] || [ "$2" = fail ]; } && echo "-" || awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
