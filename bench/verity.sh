#!/usr/bin/env bash
# bench/verity.sh: how long `earlyext verify` takes on a signed SIZE_MIB (256) MiB DDI, in user
# space (GPT, signature JSON, PKCS#7 against a trusted CA, then every data and hash block against
# the root hash), against reading and hashing the whole image once:
#   - sha256sum (coreutils), what people run to check an image;
#   - openssl dgst -sha256, the same SHA-256 code earlyext uses (libcrypto);
#   - veritysetup verify on the extracted data and hash partitions (libcryptsetup, user space).
# RUNS (5) runs each, interleaved, warm page cache (COLD=1 drops caches before every run; root).
# Prints medians (ms) and the ratios. Activation (dm-verity in the kernel) is timed in the QEMU suite.
#
# The verdict comes from bench/verity-driver.swift: the library call `earlyext verify` makes,
# compiled against the release build (make release).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-256}
RUNS=${RUNS:-5}
work=$(mktemp -d "${BENCH_DIR:-/tmp}/earlyext-verity-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
source Tests/Verity/fixtures.sh

rel=.build/release
[ -d "$rel/EarlyextCore.build" ] || { echo "bench: $rel missing (make release)" >&2; exit 1; }
swiftc -O -static-stdlib bench/verity-driver.swift -o "$work/driver" -I "$rel/Modules" \
  -Xcc -fmodule-map-file="$rel/CShim.build/module.modulemap" \
  $(for m in CMount CKmod CCurl CCrypto CCryptsetup; do echo -Xcc -fmodule-map-file=Sources/$m/module.modulemap; done) \
  -Xcc -I/usr/include/libmount -Xcc -I/usr/include/blkid \
  "$rel"/EarlyextCore.build/*.o "$rel/CShim.build/shim.c.o" 2>"$work/swiftc.log" \
  || { cat "$work/swiftc.log" >&2; exit 1; }

echo "building a signed ${SIZE_MIB} MiB DDI (fresh CA and signer)..." >&2
make_pki "$work/pki"
root=$(build_signed_ddi "$work" img x86-64 usr "$work/pki" "$SIZE_MIB")
mkdir -p "$work/root/etc/verity.d"
cp "$work/pki/ca.crt" "$work/root/etc/verity.d/"
img=$work/img.raw
size=$(stat -c %s "$img")

now() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "fail"; else print a[int((NR + 1) / 2)] }'; }
cold() { if [ "${COLD:-0}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi; }
timed() { cold; local s t; s=$(now); "$@" >/dev/null; t=$(now); echo $(( (t - s) / 1000 )); }

"$work/driver" "$img" "$work/root" 1 >/dev/null  # warm up (and fail early if it refuses)
e=(); c=(); o=(); v=()
for _ in $(seq "$RUNS"); do
  cold; e+=($("$work/driver" "$img" "$work/root" 1 | cut -d' ' -f1))
  c+=($(timed sha256sum "$img"))
  o+=($(timed openssl dgst -sha256 "$img"))
  v+=($(timed veritysetup verify "$work/img.work/data.img" "$work/img.work/hash.img" "$root"))
done
em=$(printf '%s\n' "${e[@]}" | median); cm=$(printf '%s\n' "${c[@]}" | median)
om=$(printf '%s\n' "${o[@]}" | median); vm=$(printf '%s\n' "${v[@]}" | median)
ms() { awk -v u="$1" 'BEGIN { printf "%.0f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rate() { awk -v us="$1" -v b="$size" 'BEGIN { printf "%.0f MiB/s", b / 1048576 / (us / 1e6) }'; }
cache=warm; [ "${COLD:-0}" = 1 ] && cache=cold
echo "## verify: signed ${SIZE_MIB} MiB DDI ($((size / 1048576)) MiB image, $cache page cache, medians of $RUNS)"
echo
echo "| what | ms | rate | earlyext verify / this |"
echo "|---|---|---|---|"
echo "| earlyext verify (user space: signature + every block) | $(ms "$em") | $(rate "$em") | 1.00 |"
echo "| sha256sum of the image | $(ms "$cm") | $(rate "$cm") | $(ratio "$em" "$cm") |"
echo "| openssl dgst -sha256 of the image | $(ms "$om") | $(rate "$om") | $(ratio "$em" "$om") |"
echo "| veritysetup verify (data + hash partitions) | $(ms "$vm") | $(rate "$vm") | $(ratio "$em" "$vm") |"
