#!/usr/bin/env bash
# bench/fetch.sh: fetch a SIZE_MIB (256) MiB image from the loopback test server
# (Tests/Fetch/server.py) with earlyext's fetcher (`earlyext --root R fetch` and a selection file
# naming the URL and its SHA-256), against plain `curl -o`, `curl -o` followed by `sha256sum`,
# and `curl -o` followed by `sync FILE`, RUNS (9) times, interleaved. Prints medians and the
# ratios earlyext / curl and earlyext / (curl + sha256sum).
#
# earlyext hashes while streaming and fsyncs the file and its directory before the rename;
# curl -o does neither, and sha256sum reads the file back (from the page cache). `curl -o` +
# `sync FILE` is the like-for-like row for durability (coreutils' sync FILE is an fsync).
# Every timed run starts after a `sync`, so no run pays for the previous run's dirty pages.
set -euo pipefail
cd "$(dirname "$0")/.."
EARLYEXT=${EARLYEXT:-$PWD/.build/release/earlyext}
SIZE_MIB=${SIZE_MIB:-256}
RUNS=${RUNS:-9}
work=$(mktemp -d "${BENCH_DIR:-/tmp}/earlyext-fetch-bench.XXXXXX")
server=
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/srv" "$work/root/etc/earlyext/select.d" "$work/root/etc/extensions"
head -c "${SIZE_MIB}M" /dev/urandom > "$work/srv/img.raw"
sum=$(sha256sum "$work/srv/img.raw" | cut -d' ' -f1)
python3 Tests/Fetch/server.py --root "$work/srv" > "$work/port" &
server=$!
for _ in $(seq 50); do grep -q PORT "$work/port" 2>/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$(awk '{print $2}' "$work/port")/ok/img.raw"
printf 'ID=debian\nVERSION_ID=12\n' > "$work/root/etc/os-release"
printf '[Extension]\nName=img\nUrl=%s\nSHA256=%s\n' "$url" "$sum" > "$work/root/etc/earlyext/select.d/img.conf"

now() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "fail"; else print a[int((NR + 1) / 2)] }'; }
[ -x "$EARLYEXT" ] || { echo "bench: $EARLYEXT missing (make release)" >&2; exit 1; }

e=(); c=(); p=(); d=(); h=()
for _ in $(seq "$RUNS"); do
  rm -f "$work/root/etc/extensions/img.raw"
  sync
  s=$(now)
  "$EARLYEXT" --root "$work/root" --state-dir "$work/state" --log-level error fetch >/dev/null
  t=$(now)
  [ "$(sha256sum "$work/root/etc/extensions/img.raw" | cut -d' ' -f1)" = "$sum" ] || { echo "earlyext: wrong digest" >&2; exit 1; }
  e+=($(( (t - s) / 1000 )))
  rm -f "$work/curl.raw"
  sync
  s=$(now)
  curl -sS -o "$work/curl.raw" "$url"
  t=$(now)
  p+=($(( (t - s) / 1000 )))
  rm -f "$work/curl.raw"
  sync
  s=$(now)
  curl -sS -o "$work/curl.raw" "$url"
  sync "$work/curl.raw"
  t=$(now)
  d+=($(( (t - s) / 1000 )))
  rm -f "$work/curl.raw"
  sync
  s=$(now)
  curl -sS -o "$work/curl.raw" "$url"
  got=$(sha256sum "$work/curl.raw" | cut -d' ' -f1)
  t=$(now)
  [ "$got" = "$sum" ] || { echo "curl: wrong digest" >&2; exit 1; }
  c+=($(( (t - s) / 1000 )))
  # The floor of any fetcher that verifies: SHA-256 of the same bytes, already in memory, on one
  # core (OpenSSL, as earlyext uses), with nothing else running.
  s=$(now)
  openssl dgst -sha256 "$work/srv/img.raw" >/dev/null
  t=$(now)
  h+=($(( (t - s) / 1000 )))
done

cm=$(printf '%s\n' "${c[@]}" | median)
hm=$(printf '%s\n' "${h[@]}" | median)
pm=$(printf '%s\n' "${p[@]}" | median)
dm=$(printf '%s\n' "${d[@]}" | median)
rate() { awk -v us="$1" -v mib="$SIZE_MIB" 'BEGIN { printf "%.0f MiB/s", mib / (us / 1e6) }'; }
printf '%-26s %10s %12s\n' tool median_ms throughput
printf '%-26s %10.1f %12s\n' "curl -o" "$(awk -v u="$pm" 'BEGIN{print u/1000}')" "$(rate "$pm")"
printf '%-26s %10.1f %12s\n' "curl -o + sync FILE" "$(awk -v u="$dm" 'BEGIN{print u/1000}')" "$(rate "$dm")"
printf '%-26s %10.1f %12s\n' "curl -o + sha256sum" "$(awk -v u="$cm" 'BEGIN{print u/1000}')" "$(rate "$cm")"
em=$(printf '%s\n' "${e[@]}" | median)
printf '%-26s %10.1f %12s\n' "openssl dgst -sha256 (RAM)" "$(awk -v u="$hm" 'BEGIN{print u/1000}')" "$(rate "$hm")"
printf '%-26s %10.1f %12s\n' "earlyext fetch" "$(awk -v u="$em" 'BEGIN{print u/1000}')" "$(rate "$em")"
printf 'ratio earlyext / (curl + sha256sum): %s (goal <= 1.0)\n' "$(awk -v a="$em" -v b="$cm" 'BEGIN { printf "%.2f", a / b }')"
printf 'ratio earlyext / curl: %s (goal <= 1.1)\n' "$(awk -v a="$em" -v b="$pm" 'BEGIN { printf "%.2f", a / b }')"
printf 'ratio earlyext / (curl + sync FILE): %s\n' "$(awk -v a="$em" -v b="$dm" 'BEGIN { printf "%.2f", a / b }')"
echo "($SIZE_MIB MiB, medians of $RUNS runs, loopback, served by Tests/Fetch/server.py)"
