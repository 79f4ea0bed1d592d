# Shared helpers for the boot harness. Sourced, never run.
# shellcheck shell=bash
set -euo pipefail

EE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EE_CACHE=${EARLYEXT_CACHE:-${HOME:-/root}/.cache/earlyext}
EE_MIRROR=${EARLYEXT_MIRROR:-http://deb.debian.org/debian}
EE_OUT=${EARLYEXT_OUT:-$EE_REPO/out/boot}
EE_BINARY=${EARLYEXT_BINARY:-$EE_REPO/.build/release/earlyext}

log() { printf '[boot %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# hash_inputs PATH... [-- STRING...]
# A short, stable hash of files and directory trees (names, symlink targets, the
# executable bit and contents; not mtimes or owners) plus any literal strings.
hash_inputs() {
  local p strings=0
  {
    for p in "$@"; do
      if [[ $p == -- ]]; then strings=1; continue; fi
      if ((strings)); then printf 'S %s\n' "$p"; continue; fi
      if [[ -d $p ]]; then
        (cd "$p" && find . -mindepth 1 \( -type f -o -type l -o -type d \) -print0 | LC_ALL=C sort -z |
          while IFS= read -r -d '' f; do
            if [[ -L $f ]]; then printf 'L %s %s\n' "$f" "$(readlink "$f")"
            elif [[ -d $f ]]; then printf 'D %s\n' "$f"
            else printf 'F %s %s %s\n' "$f" "$([[ -x $f ]] && echo x || echo -)" "$(sha256sum <"$f" | cut -c1-64)"
            fi
          done) | sed "s|^|$(basename "$p"): |"
      elif [[ -e $p ]]; then
        printf 'F %s %s\n' "$(basename "$p")" "$(sha256sum <"$p" | cut -c1-64)"
      else
        printf 'M %s\n' "$p"
      fi
    done
  } | sha256sum | cut -c1-16
}

# cache_dir NAME HASH -> prints the cache directory path for that artefact.
cache_dir() { printf '%s/%s-%s\n' "$EE_CACHE" "$1" "$2"; }

# cache_ready DIR: true if DIR was completely built.
cache_ready() { [[ -f $1/.done ]]; }

# cache_begin DIR -> prints a fresh temp dir next to DIR to build into.
cache_begin() {
  mkdir -p "$EE_CACHE"
  local tmp="$1.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"; printf '%s\n' "$tmp"
}

# cache_commit TMP DIR: atomically publish TMP as DIR, and drop older
# versions of the same artefact (keeps the newest 2).
cache_commit() {
  local tmp=$1 dir=$2 name old
  date -u +%FT%TZ >"$tmp/.done"
  rm -rf "$dir"; mv "$tmp" "$dir"
  name=$(basename "$dir"); name=${name%-*}
  # shellcheck disable=SC2012
  ls -1dt "$EE_CACHE/$name"-* 2>/dev/null | grep -v '\.tmp\.' | grep -E "/$name-[0-9a-f]{16}$" | tail -n +3 |
    while read -r old; do rm -rf "$old"; done
}

# need_root: most builders need root (mmdebstrap, mkfs with owners, dracut).
need_root() { [[ $(id -u) == 0 ]] || die "$0 must run as root"; }

# binary_hash: hash of the earlyext binary the images are built from.
binary_hash() {
  [[ -f $EE_BINARY ]] || die "earlyext binary not found at $EE_BINARY (run 'make release' or set EARLYEXT_BINARY)"
  sha256sum <"$EE_BINARY" | cut -c1-16
}
