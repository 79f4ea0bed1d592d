#!/usr/bin/env bash
# Packs every boot/extensions/NAME/ tree into NAME-VERSION-x86-64.raw (named like
# sysext-bakery's images), squashfs built with -all-root or erofs, as build.conf
# says. The images are reproducible (fixed times, owners, modes and UUIDs), so the
# sha256 in the scenarios' Ignition configs stays valid across machines.
# Prints the cache dir, which also holds SHA256SUMS.
source "$(dirname "$0")/lib.sh"

src=$EE_REPO/boot/extensions
key=$(hash_inputs "$0" "$EE_REPO/boot/lib.sh" "$src" -- \
  "$(dpkg-query -W -f='${Version}' squashfs-tools erofs-utils 2>/dev/null | tr '\n' ' ')")
out=$(cache_dir extensions "$key")
if cache_ready "$out"; then printf '%s\n' "$out"; exit 0; fi

tmp=$(cache_begin "$out")
for dir in "$src"/*/; do
  name=$(basename "$dir")
  VERSION='' FORMAT=squashfs
  # shellcheck disable=SC1091
  source "$dir/build.conf"
  [[ -n $VERSION ]] || die "$dir/build.conf: VERSION is missing"
  [[ -f $dir/usr/lib/extension-release.d/extension-release.$name ]] ||
    die "$dir: usr/lib/extension-release.d/extension-release.$name is missing"
  stage=$tmp/stage-$name
  mkdir -p "$stage"
  for h in usr opt; do [[ -d $dir/$h ]] && cp -a "$dir/$h" "$stage/"; done
  # Modes as git keeps them (0644/0755), whatever the umask of the checkout.
  find "$stage" -type d -exec chmod 0755 {} +
  find "$stage" -type f \( -perm -u+x -exec chmod 0755 {} + -o -exec chmod 0644 {} + \)
  img=$tmp/$name-$VERSION-x86-64.raw
  case $FORMAT in
    squashfs) mksquashfs "$stage" "$img" -quiet -noappend -all-root -no-xattrs \
                -mkfs-time 0 -all-time 0 -processors 1 >/dev/null ;;
    erofs) mkfs.erofs --quiet -T0 -U 6c8c3b2e-5b0f-4f5e-9f57-0ea1e1e1e100 --all-root -x-1 \
             "$img" "$stage" >/dev/null ;;
    *) die "$dir/build.conf: FORMAT must be squashfs or erofs" ;;
  esac
  rm -rf "$stage"
  log "extension: $(basename "$img") ($FORMAT, $(stat -c %s "$img") bytes)"
done
(cd "$tmp" && sha256sum -- *.raw >SHA256SUMS)
cache_commit "$tmp" "$out"
printf '%s\n' "$out"
