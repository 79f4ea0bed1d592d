#!/usr/bin/env bash
# Builds the guest's Debian 12 tree with mmdebstrap (minbase + boot/rootfs.packages)
# and the files under boot/guest/ (copied over the tree). Prints the cache dir,
# which holds tree/ (a merged-/usr Debian root). The disk images are made from it
# by build-disks.sh, so a new earlyext binary never re-runs mmdebstrap.
source "$(dirname "$0")/lib.sh"
need_root

pkgfile=$EE_REPO/boot/rootfs.packages
key=$(hash_inputs "$0" "$EE_REPO/boot/lib.sh" "$pkgfile" "$EE_REPO/boot/guest" -- "$EE_MIRROR")
out=$(cache_dir rootfs "$key")
if cache_ready "$out"; then printf '%s\n' "$out"; exit 0; fi

tmp=$(cache_begin "$out")
pkgs=$(grep -v '^#' "$pkgfile" | xargs | tr ' ' ,)
log "rootfs: mmdebstrap bookworm minbase + $pkgs (takes a few minutes)"
mmdebstrap --variant=minbase --include="$pkgs" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='cp -a "'"$EE_REPO"'/boot/guest/." "$1/"' \
  --customize-hook='chroot "$1" sh /etc/earlyext-guest-setup.sh' \
  --customize-hook='rm -f "$1/etc/earlyext-guest-setup.sh"' \
  bookworm "$tmp/tree" "$EE_MIRROR" >&2
[[ -L $tmp/tree/bin ]] || die "rootfs: expected a merged-/usr tree"
cache_commit "$tmp" "$out"
log "rootfs: ready ($(du -sh "$out/tree" | cut -f1))"
printf '%s\n' "$out"
