#!/usr/bin/env bash
# build-images.sh: the verity scenario's images (tracker issue 5), made with the builders
# the verity tests use (Tests/Verity/fixtures.sh) and a fresh PKI per build: a new CA and
# signer every time this cache entry is made, no key ever committed or kept (the keys are
# deleted; only the CA certificate leaves). Prints the cache dir, served to the guest by
# boot/run-scenario.sh (scenario.conf: SERVE=VERITY_DIR). It holds:
#   signedext-1.0-x86-64.raw   signed DDI: root + root-verity + root-verity-sig (x86-64)
#   tampered-1.0-x86-64.raw    the same kind, one byte flipped in the data partition after signing
#   unsigned-1.0-x86-64.raw    plain squashfs, no verity data
#   earlyext-test.crt          the CA certificate (the signer is issued by it); Ignition puts it
#                              into /etc/verity.d
#   verity.manifest            KEY=VALUE lines the guest's checks compare with (root hashes,
#                              the signer's subject, where the byte was flipped, payload digests)
#   SHA256SUMS
# Trees: boot/scenarios/verity/extensions/NAME/. Each image also gets
# usr/share/earlyext-NAME/payload.bin (256 KiB, random, per build) so that the squashfs spans
# many 4 KiB verity blocks: the checks read it through dm-verity.
#
# Where the tampered byte goes: into the squashfs metadata block that holds the root inode
# (inode_table_start + root_inode>>16 in the superblock; +2 skips the block's length header), so
# not the superblock (block 0), not file data, and not the hash tree or the signature. Activation
# succeeds (the tree's top block and the signature are intact); the first read of that 4 KiB data
# block through dm-verity fails with EIO. squashfs reads it at mount time: with these small trees
# the same 4 KiB block also holds the directory, fragment and id tables, so the mount fails at the
# first of them it reads (the id index table, in the boots so far) and the kernel logs "data block
# N is corrupted". So the image is refused at mount, and never merged. The block is checked not
# to be block 0. (A flip inside payload.bin's data would let the mount, the release file and the
# merge succeed, and only reads of that block fail: docs/verity.md, "at boot the kernel fails only
# the read of that block".)
source "$(dirname "$0")/../../lib.sh"
here=$EE_REPO/boot/scenarios/verity
fixtures=$EE_REPO/Tests/Verity/fixtures.sh
for tool in veritysetup sfdisk openssl mksquashfs; do
  command -v "$tool" >/dev/null || die "verity images: $tool is missing (boot/install-deps.sh installs it)"
done
key=$(hash_inputs "$0" "$EE_REPO/boot/lib.sh" "$fixtures" "$here/extensions" -- \
  "$(dpkg-query -W -f='${Version} ' squashfs-tools cryptsetup-bin fdisk openssl 2>/dev/null)")
out=$(cache_dir verity "$key")
if cache_ready "$out"; then printf '%s\n' "$out"; exit 0; fi

tmp=$(cache_begin "$out")
work=$tmp/work
mkdir -p "$work"
# shellcheck disable=SC1090
source "$fixtures"
make_pki "$work/pki" >&2

# stage NAME: the tree plus a random payload (and its sha256, inside the image too).
stage() {
  local name=$1 tree=$2
  mkdir -p "$tree"
  cp -a "$here/extensions/$name/." "$tree/"
  head -c 262144 /dev/urandom >"$tree/usr/share/earlyext-$name/payload.bin"
  (cd "$tree/usr/share/earlyext-$name" && sha256sum payload.bin >payload.sha256)
  find "$tree" -type d -exec chmod 0755 {} +
  find "$tree" -type f \( -perm -u+x -exec chmod 0755 {} + -o -exec chmod 0644 {} + \)
}

# le64 FILE OFFSET: a little-endian 64-bit field.
le64() { od -An -t u8 -j "$2" -N 8 --endian=little "$1" | tr -d ' '; }

manifest=$tmp/verity.manifest
{
  echo "# boot/scenarios/verity/build-images.sh, $(date -u +%FT%TZ)"
  echo "CA_SUBJECT=$(openssl x509 -in "$work/pki/ca.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
  echo "SIGNER_SUBJECT=$(openssl x509 -in "$work/pki/signer.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
  echo "SIGNER_FINGERPRINT=$(cert_fingerprint "$work/pki/signer.crt")"
} >"$manifest"

for name in signedext tampered; do
  # build_signed_ddi builds its tree in DIR/NAME.work/tree (make_tree adds the release file and
  # usr/bin/NAME to what is there already).
  stage "$name" "$work/$name.work/tree"
  root=$(build_signed_ddi "$work" "$name" x86-64 root "$work/pki")
  [[ $root =~ ^[0-9a-f]{64}$ ]] || die "verity images: $name: no root hash from build_signed_ddi"
  img=$tmp/$name-1.0-x86-64.raw
  mv "$work/$name.raw" "$img"
  start=$(sfdisk -J "$img" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"]; print(p[0]["start"])')
  data_offset=$((start * 512))
  up=${name^^}
  {
    echo "${up}_ROOT_HASH=$root"
    echo "${up}_DATA_OFFSET=$data_offset"
    echo "${up}_PAYLOAD_SHA256=$(cut -c1-64 "$work/$name.work/tree/usr/share/earlyext-$name/payload.sha256")"
  } >>"$manifest"
  if [[ $name == tampered ]]; then
    data=$work/$name.work/data.img
    [[ $(head -c 4 "$data" | od -An -t x1 | tr -d ' ') == 68737173 ]] || die "verity images: $data is not squashfs"
    inode_table=$(le64 "$data" 64)
    root_inode=$(le64 "$data" 32)
    bytes_used=$(le64 "$data" 40)
    at=$((inode_table + (root_inode >> 16) + 2))
    block=$((at / 4096))
    ((block > 0 && at < bytes_used)) || die "verity images: the root inode's block ($block, byte $at) is not past the superblock's block"
    old=$(od -An -t u1 -j $((data_offset + at)) -N 1 "$img" | tr -d ' ')
    printf "$(printf '\\%03o' $((old ^ 0xff)))" |
      dd of="$img" bs=1 seek=$((data_offset + at)) conv=notrunc status=none
    {
      echo "TAMPERED_BYTE=$((data_offset + at))"
      echo "TAMPERED_DATA_BLOCK=$block"
      echo "TAMPERED_WHAT=squashfs root inode metadata block (inode_table_start $inode_table + $((root_inode >> 16)) + 2), byte $at of the data partition, 4 KiB data block $block, 0x$(printf %02x "$old") -> 0x$(printf %02x $((old ^ 0xff)))"
    } >>"$manifest"
    # Sanity: the tree no longer matches the data (veritysetup verify fails), the signature is intact.
    dd if="$img" of="$work/tampered-data.img" bs=512 skip="$start" count=$(($(stat -c %s "$data") / 512)) status=none
    if veritysetup verify "$work/tampered-data.img" "$work/$name.work/hash.img" "$root" >/dev/null 2>&1; then
      die "verity images: the tampered data still verifies"
    fi
  fi
  log "verity images: $(basename "$img") (root hash ${root:0:12}…, $(stat -c %s "$img") bytes)"
done

# unsigned: a plain squashfs, no verity, no signature.
stage unsigned "$work/unsigned.tree"
make_fs "$work/unsigned.tree" "$tmp/unsigned-1.0-x86-64.raw"
echo "UNSIGNED_PAYLOAD_SHA256=$(cut -c1-64 "$work/unsigned.tree/usr/share/earlyext-unsigned/payload.sha256")" >>"$manifest"
log "verity images: unsigned-1.0-x86-64.raw ($(stat -c %s "$tmp/unsigned-1.0-x86-64.raw") bytes)"

cp "$work/pki/ca.crt" "$tmp/earlyext-test.crt"
# No key leaves this script.
rm -rf "$work"
(cd "$tmp" && sha256sum -- *.raw earlyext-test.crt verity.manifest >SHA256SUMS)
cache_commit "$tmp" "$out"
printf '%s\n' "$out"
