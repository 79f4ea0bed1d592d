#!/usr/bin/env bash
# images.sh [ENVFILE]: builds (or finds in ~/.cache/earlyext) everything a boot
# needs and writes their paths as shell assignments to ENVFILE (default
# out/boot/images.env). Each piece is cached under a hash of its inputs and is
# rebuilt only when they change; see docs/boot.md.
source "$(dirname "$0")/lib.sh"
need_root
envfile=${1:-$EE_OUT/images.env}
mkdir -p "$(dirname "$envfile")"
t0=$SECONDS
[[ -x $EE_BINARY ]] || die "no earlyext binary at $EE_BINARY: run 'make release' (or set EARLYEXT_BINARY)"
log "images: earlyext binary $EE_BINARY ($(stat -c %s "$EE_BINARY") bytes, sha256 $(binary_hash)…)"

kernel=$(bash "$EE_REPO/boot/build-kernel.sh")
rootfs=$(bash "$EE_REPO/boot/build-rootfs.sh")
{ read -r rootdisk; read -r usrdisk; } < <(bash "$EE_REPO/boot/build-disks.sh" "$rootfs" "$kernel")
# The modules scenario's /usr: without dummy.ko, which only an extension ships there.
usrdisk_nodummy=$(bash "$EE_REPO/boot/build-disks.sh" "$rootfs" "$kernel" dummy)
initrd=$(bash "$EE_REPO/boot/build-initrd.sh" "$kernel" with)
initrd_without=$(bash "$EE_REPO/boot/build-initrd.sh" "$kernel" without)
exts=$(bash "$EE_REPO/boot/build-extensions.sh" "$kernel")
# The verity scenario's images: signed DDIs with a fresh PKI per build (not reproducible).
verity=$(bash "$EE_REPO/boot/scenarios/verity/build-images.sh")

cat >"$envfile" <<EOT
KVER=$(cat "$kernel/kver")
KERNEL=$kernel/vmlinuz
INITRD=$initrd/initrd.img
INITRD_SIZE=$(cat "$initrd/size")
INITRD_WITHOUT_SIZE=$(cat "$initrd_without/size")
ROOT_IMG=$rootdisk/root.ext4
USR_IMG=$usrdisk/usr.erofs
USR_IMG_NODUMMY=$usrdisk_nodummy/usr.erofs
EXT_DIR=$exts
VERITY_DIR=$verity
EOT
log "images: ready in $((SECONDS - t0)) s; initrd $(cat "$initrd/size") bytes with earlyext, $(cat "$initrd_without/size") without"
