#!/usr/bin/env bash
# build-disk.sh: the bench-verity scenario's extra disk (attached read-only as /dev/vdc by
# boot/run-scenario.sh, scenario.conf DISKS=). Prints the path of the raw disk image. Cached in
# ~/.cache/earlyext/bench-verity-HASH like the other boot images; the hash covers this script,
# boot/lib.sh, Tests/Verity/fixtures.sh, the size and the versions of the tools that build it.
#
# The disk is an ext4 filesystem (label eebench, no journal) holding:
#   signed/bench.raw       a signed DDI as systemd-repart makes them: GPT with usr, usr-verity and
#                          usr-verity-sig (x86-64); the usr partition is a squashfs holding
#                          share/bench/payload, SIZE_MIB (256) MiB from /dev/urandom, so the image
#                          really is that big (squashfs can't compress it)
#   plain/bench.raw        the same files (the same payload) as a plain squashfs sysext (usr/…,
#                          no verity data): the same merge without dm-verity, for comparison
#   earlyext-bench.crt     the CA certificate; the guest puts it into ROOT/etc/verity.d
#   bench.manifest         KEY=VALUE: root hash, sizes, the sha256 of signed/bench.raw
# A fresh CA and signer are made for every build (Tests/Verity/fixtures.sh make_pki); the keys are
# deleted before the disk is made, only the CA certificate leaves.
source "$(dirname "$0")/../../lib.sh"
here=$EE_REPO/boot/scenarios/bench-verity
fixtures=$EE_REPO/Tests/Verity/fixtures.sh
size_mib=${BENCH_VERITY_MIB:-256}
for tool in veritysetup sfdisk openssl mksquashfs mkfs.ext4; do
  command -v "$tool" >/dev/null || die "bench-verity disk: $tool is missing (boot/install-deps.sh installs it)"
done
key=$(hash_inputs "$0" "$EE_REPO/boot/lib.sh" "$fixtures" -- "size=$size_mib" \
  "$(dpkg-query -W -f='${Version} ' squashfs-tools cryptsetup-bin fdisk openssl e2fsprogs 2>/dev/null)")
out=$(cache_dir bench-verity "$key")
if cache_ready "$out"; then printf '%s\n' "$out/disk.ext4"; exit 0; fi

need_root
tmp=$(cache_begin "$out")
work=$tmp/work stage=$tmp/stage
mkdir -p "$work" "$stage/signed" "$stage/plain"
# shellcheck disable=SC1090
source "$fixtures"
t0=$SECONDS
log "bench-verity disk: building a signed ${size_mib} MiB DDI (fresh CA and signer)"
make_pki "$work/pki" >&2
root=$(build_signed_ddi "$work" bench x86-64 usr "$work/pki" "$size_mib")
[[ $root =~ ^[0-9a-f]{64}$ ]] || die "bench-verity disk: no root hash from build_signed_ddi"
mv "$work/bench.raw" "$stage/signed/bench.raw"
# The plain image: the same files (the same payload bytes) under usr/, as a plain squashfs sysext.
mkdir -p "$work/plain"
mv "$work/bench.work/tree" "$work/plain/usr"
make_fs "$work/plain" "$stage/plain/bench.raw"
cp "$work/pki/ca.crt" "$stage/earlyext-bench.crt"
rm -rf "$work"  # no key leaves this script
img=$stage/signed/bench.raw
{
  echo "# boot/scenarios/bench-verity/build-disk.sh, $(date -u +%FT%TZ)"
  echo "SIZE_MIB=$size_mib"
  echo "ROOT_HASH=$root"
  echo "SIGNED_BYTES=$(stat -c %s "$img")"
  echo "SIGNED_SHA256=$(sha256sum "$img" | cut -c1-64)"
  echo "PLAIN_BYTES=$(stat -c %s "$stage/plain/bench.raw")"
  echo "PAYLOAD_BYTES=$((size_mib * 1048576))"
  echo "PARTITIONS=$(sfdisk -d "$img" | grep -c '^/')"
} >"$stage/bench.manifest"
cp "$stage/bench.manifest" "$tmp/bench.manifest"
used=$(du -s -B1M "$stage" | cut -f1)
mkfs.ext4 -q -F -L eebench -O ^has_journal -E root_owner=0:0 -d "$stage" "$tmp/disk.ext4" "$((used + used / 10 + 32))M" >&2
rm -rf "$stage"
cache_commit "$tmp" "$out"
log "bench-verity disk: $out/disk.ext4 ($(du -h --apparent-size "$out/disk.ext4" | cut -f1), root hash ${root:0:12}…) in $((SECONDS - t0)) s"
printf '%s\n' "$out/disk.ext4"
