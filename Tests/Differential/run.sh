#!/usr/bin/env bash
# Differential test driver: systemd-sysext vs earlyext on the same fake root.
#
#   run.sh SCENARIO      build the scenario's root once, merge a fresh copy with each tool (each in
#                        its own private mount namespace), compare the merged ROOT/usr and ROOT/opt
#                        trees and print FACT lines (plus DIFF lines when the trees differ)
#   run.sh -v SCENARIO   the same, and print both dumps (DUMP lines)
#   run.sh --list        the scenario names, one a line
#
# Needs root. Nothing leaks to the host: everything happens in private mount namespaces on tmpfs.
# The earlyext binary is $EARLYEXT, else $EARLYEXT_BINARY, else .build/debug/earlyext.
#
# What is compared, per hierarchy (usr, opt): the top mount's type and its ro/nodev flags, and every
# entry below it: relative path, type, permission bits, owner, symlink target, SHA-256 of file
# content. `.systemd-sysext/dev` is compared by existence only (device numbers differ between
# mounts). `.systemd-sysext/extensions` is compared byte for byte, so the names and their order
# must match.
#
# The reference tree is systemd-sysext's merge. Where the host's systemd-sysext (252) is known to
# differ from today's documented semantics, the scenario declares it (`quirk252`), describes how
# to make 252 produce the modern result (`ref_fixup`, `REF_ENV`), and the driver then runs 252 twice:
# once on the scenario as it is (facts sysext252_*, checked against `expect_252`), and once on the
# fixed-up copy, which becomes the reference earlyext is compared with (facts ref_*).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=scenarios.sh
source "$HERE/scenarios.sh"

verbose=0
while [ $# -gt 0 ]; do
  case $1 in
    --list) declare -F | awk '$3 ~ /^sc_/ { print substr($3, 4) }'; exit 0 ;;
    -v) verbose=1; shift ;;
    --) shift ;;
    *) break ;;
  esac
done
scenario=${1:?usage: run.sh [-v] SCENARIO | --list}
declare -F "sc_$scenario" >/dev/null || { echo "run.sh: no scenario '$scenario' (see run.sh --list)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 2; }

# Into a private mount namespace of our own (idempotent: the marker holds our namespace's inode).
if [ "${DIFF_NS:-}" != "$(readlink /proc/self/ns/mnt)" ]; then
  exec unshare -m --propagation private bash -c \
    'export DIFF_NS=$(readlink /proc/self/ns/mnt); exec bash "$0" "$@"' "$HERE/run.sh" \
    "$([ $verbose = 1 ] && echo -v || echo --)" "$scenario"
fi

EARLYEXT=${EARLYEXT:-${EARLYEXT_BINARY:-$REPO/.build/debug/earlyext}}
[ -x "$EARLYEXT" ] || { echo "run.sh: no earlyext binary at $EARLYEXT" >&2; exit 2; }
SYSEXT=${SYSEXT:-systemd-sysext}
PYTHON=${PYTHON:-/usr/bin/python3}
LOGLEVEL=info; [ "$verbose" = 0 ] || LOGLEVEL=debug
export EARLYEXT SYSEXT PYTHON LOGLEVEL

BASE=$(mktemp -d /tmp/earlyext-diff.XXXXXX)
mount -t tmpfs -o mode=0755 tmpfs "$BASE"
# A fresh /run: the host's /run/extensions must not leak in, and systemd-sysext keeps its
# workspace under /run/systemd/sysext.
mount -t tmpfs -o mode=0755 tmpfs /run
R=$BASE/src          # the scenario's root
W=$BASE/work         # extension source trees
OUT=$BASE/out
mkdir -p "$R" "$W" "$OUT"

# ---- the scenario -------------------------------------------------------------------------------
EXPECT=""            # the names modern semantics merge, in layer order (bottom first)
QUIRK=""             # non-empty: 252 differs here; what and why
EXPECT_252=""        # with QUIRK: the names 252 merges
EXPECT_252_RC=0      # with QUIRK: 252's exit status (0, "fail" for any non-zero, or "any")
REF_ENV=""           # with QUIRK: extra environment for the reference run of 252
EARLYEXT_RC=0        # earlyext's expected exit status (0, or "fail")
DESCRIPTION=""
ref_fixup() { :; }   # with QUIRK: run on the reference copy ($R names it) before 252 merges it
ref_dump_fixup() { cat; }  # with QUIRK: a filter over the reference run's listing
root_setup() { :; }  # run on each tool's fresh copy of the root ($1), in its namespace, before it merges

"sc_$scenario"
export -f root_setup

# ---- run one tool on a fresh copy, in its own namespace -----------------------------------------
# run_tool TOOL SRC OUT [VAR=value...]: copies SRC onto a fresh shared tmpfs, merges it with TOOL
# (sysext | earlyext), and writes OUT/rc, OUT/log, OUT/dump, OUT/merged, OUT/order.
run_tool() {
  local tool=$1 src=$2 out=$3; shift 3
  mkdir -p "$out"
  unshare -m --propagation private bash -c '
    set -u
    tool=$1 src=$2 out=$3; shift 3
    M=$out/mnt
    mkdir -p "$M"
    mount -t tmpfs tmpfs /run
    # The root sits on a shared mount, as /sysroot does in the initrd. systemd-sysext merges in a
    # child namespace and relies on propagation to get its mounts back here.
    mount -t tmpfs -o mode=0755 tmpfs "$M"
    mount --make-shared "$M"
    cp -a "$src" "$M/root"
    root_setup "$M/root"
    case $tool in
      sysext)   env SYSTEMD_IN_INITRD=0 SYSTEMD_LOG_LEVEL=$LOGLEVEL "$@" "$SYSEXT" --root="$M/root" merge ;;
      earlyext) env "$@" "$EARLYEXT" --root "$M/root" --state-dir "$M/state" --log-level=$LOGLEVEL --offline merge ;;
    esac >"$out/log" 2>&1
    echo $? >"$out/rc"
    "$PYTHON" "'"$HERE"'/dump.py" "$M/root" >"$out/dump"
    for h in usr opt; do
      f=$M/root/$h/.systemd-sysext/extensions
      if [ -f "$f" ]; then tr "\n" " " <"$f" | sed "s/ *$//" >"$out/order.$h"; else echo - >"$out/order.$h"; fi
    done
    cat "$M/root"/usr/.systemd-sysext/extensions "$M/root"/opt/.systemd-sysext/extensions 2>/dev/null |
      sort -u | tr "\n" " " | sed "s/ *$//" >"$out/merged"
  ' run_tool "$tool" "$src" "$out" "$@"
}

# The names in version order (bottom layer first), space-separated, for comparing verdict sets.
sorted_names() { tr ' ' '\n' | grep -v '^$' | sort -V | tr '\n' ' ' | sed 's/ *$//'; }

fact() { printf 'FACT %s=%s\n' "$1" "$2"; }

started=$(date +%s%N)
run_tool sysext "$R" "$OUT/sysext252"
if [ -n "$QUIRK" ]; then
  cp -a "$R" "$BASE/ref-src"
  ( R=$BASE/ref-src; ref_fixup )
  # shellcheck disable=SC2086
  run_tool sysext "$BASE/ref-src" "$OUT/ref" $REF_ENV
  ref_dump_fixup <"$OUT/ref/dump" >"$OUT/ref/dump.fixed"
  mv "$OUT/ref/dump.fixed" "$OUT/ref/dump"
  ref=$OUT/ref
else
  ref=$OUT/sysext252
fi
run_tool earlyext "$R" "$OUT/earlyext"
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))

fact scenario "$scenario"
fact description "$DESCRIPTION"
fact sysext_version "$("$SYSEXT" --version | awk 'NR == 1 { print $2 }')"
fact expect "$EXPECT"
fact earlyext_rc "$(cat "$OUT/earlyext/rc")"
fact expect_earlyext_rc "$EARLYEXT_RC"
fact earlyext_merged "$(sorted_names <"$OUT/earlyext/merged")"
fact earlyext_order "$(cat "$OUT/earlyext/order.usr")"
fact earlyext_order_opt "$(cat "$OUT/earlyext/order.opt")"
fact ref_rc "$(cat "$ref/rc")"
fact ref_merged "$(sorted_names <"$ref/merged")"
fact ref_order "$(cat "$ref/order.usr")"
fact ref_order_opt "$(cat "$ref/order.opt")"
fact sysext252_rc "$(cat "$OUT/sysext252/rc")"
fact sysext252_merged "$(sorted_names <"$OUT/sysext252/merged")"
fact quirk "$QUIRK"
if [ -n "$QUIRK" ]; then
  fact expect_252 "$EXPECT_252"
  fact expect_252_rc "$EXPECT_252_RC"
fi
fact elapsed_ms "$elapsed_ms"

# Mount flags are facts of their own: 252 mounts the overlay without nodev (see README.md).
for h in usr opt; do
  fact "ref_flags_$h" "$(awk -v h="$h" '$1 == "flags" && $2 == h { $1 = $2 = ""; sub(/^ +/, ""); print }' "$ref/dump")"
  fact "earlyext_flags_$h" "$(awk -v h="$h" '$1 == "flags" && $2 == h { $1 = $2 = ""; sub(/^ +/, ""); print }' "$OUT/earlyext/dump")"
done
grep -v '^flags ' "$ref/dump" >"$ref/tree"
grep -v '^flags ' "$OUT/earlyext/dump" >"$OUT/earlyext/tree"
if diff -u --label ref --label earlyext "$ref/tree" "$OUT/earlyext/tree" >"$OUT/diff"; then
  fact same_tree yes
  fact diff_lines 0
else
  fact same_tree no
  # Only the changed lines, not the context or the headers.
  grep '^[-+]' "$OUT/diff" | grep -v '^\(---\|+++\) ' >"$OUT/diff.lines" || true
  fact diff_lines "$(wc -l <"$OUT/diff.lines")"
  sed 's/^/DIFF /' "$OUT/diff.lines"
fi
if [ "$verbose" = 1 ]; then
  sed 's/^/DUMP ref /' "$ref/dump"
  sed 's/^/DUMP earlyext /' "$OUT/earlyext/dump"
  [ -z "$QUIRK" ] || sed 's/^/DUMP sysext252 /' "$OUT/sysext252/dump"
fi
# The tools' own output, for failure messages.
sed 's/^/LOG earlyext: /' "$OUT/earlyext/log"
sed 's/^/LOG ref: /' "$ref/log"
[ -z "$QUIRK" ] || sed 's/^/LOG sysext252: /' "$OUT/sysext252/log"
