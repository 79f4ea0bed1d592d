#!/usr/bin/env bash
# build-initrd.sh KERNEL_DIR [with|without]
# Builds the test initrd with dracut for the downloaded kernel and prints the
# cache dir holding initrd.img. "without" leaves the earlyext module out (used
# only to report what earlyext adds to the initrd size).
#
# dracut only looks for modules in $dracutbasedir/modules.d, so the build uses a
# private dracutbasedir: symlinks to the host's /usr/lib/dracut plus
# 90earlyext -> dracut/90earlyext of this checkout. The host's dracut.conf and
# dracut.conf.d are ignored (--conf/--confdir), so builds are the same everywhere.
source "$(dirname "$0")/lib.sh"
need_root
kernel=$1 mode=${2:-with}
kver=$(cat "$kernel/kver")
hostver=$(dpkg-query -W -f='${Version}' dracut-core ignition systemd udev kmod 2>/dev/null | tr '\n' ' ')

inputs=("$0" "$EE_REPO/boot/lib.sh" -- "$(basename "$kernel")" "$mode" "$hostver")
if [[ $mode == with ]]; then
  inputs=("$EE_REPO/dracut/90earlyext" "$EE_REPO/initrd-units" "${inputs[@]}" "$(binary_hash)")
fi
key=$(hash_inputs "${inputs[@]}")
out=$(cache_dir "initrd-$mode" "$key")
if cache_ready "$out"; then printf '%s\n' "$out"; exit 0; fi

log "initrd ($mode earlyext): dracut for $kver"
tmp=$(cache_begin "$out")
base=$tmp/dracutbase
mkdir -p "$base/modules.d" "$tmp/confdir"
for f in /usr/lib/dracut/*; do [[ $(basename "$f") == modules.d ]] || ln -s "$f" "$base/"; done
for m in /usr/lib/dracut/modules.d/*; do ln -s "$m" "$base/modules.d/"; done
ln -s "$EE_REPO/dracut/90earlyext" "$base/modules.d/90earlyext"

# Debian's ignition build calls setfiles in the files stage when the root has
# /etc/selinux/config; the guest has no SELinux, so the initrd gets a no-op.
printf '#!/bin/sh\nexit 0\n' >"$tmp/setfiles"; chmod 0755 "$tmp/setfiles"

modules=(systemd systemd-initrd dracut-systemd udev-rules base fs-lib rootfs-block
         shutdown ignition systemd-networkd)
drivers=(virtio_pci virtio_blk virtio_net qemu_fw_cfg)
# What earlyext needs; left out of the "without" build so that the size
# difference is what the earlyext module adds (binary, libraries, kmod, modules).
[[ $mode == with ]] && { modules+=(earlyext); drivers+=(overlay squashfs erofs loop dm-verity); }

export dracutbasedir=$base
export EARLYEXT_BINARY=$EE_BINARY EARLYEXT_UNIT=$EE_REPO/initrd-units/earlyext.service
dracut --quiet --force --no-hostonly --no-hostonly-cmdline --no-early-microcode \
  --conf /dev/null --confdir "$tmp/confdir" \
  --kver "$kver" --kmoddir "$kernel/lib/modules/$kver" \
  --modules "${modules[*]}" --add-drivers "${drivers[*]}" \
  -i "$tmp/setfiles" /usr/sbin/setfiles \
  --zstd --tmpdir "$tmp" "$tmp/initrd.img" >&2
rm -rf "$base" "$tmp/confdir" "$tmp/setfiles"
stat -c %s "$tmp/initrd.img" >"$tmp/size"
lsinitrd "$tmp/initrd.img" >"$tmp/contents.txt" 2>/dev/null || true
cache_commit "$tmp" "$out"
log "initrd ($mode earlyext): $(cat "$out/size") bytes"
printf '%s\n' "$out"
