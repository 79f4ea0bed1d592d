#!/bin/bash
# dracut module: earlyext merges system extensions over /sysroot/usr in the initrd,
# after Ignition and before switch-root. See README.md next to this file.
#
# The binary is taken from $EARLYEXT_BINARY if set (the boot harness points it at
# .build/release/earlyext), else from /usr/bin/earlyext on the build host.
# The unit is taken from $EARLYEXT_UNIT if set, else from this module's directory
# (a copy of initrd-units/earlyext.service, installed by the package), else from
# the repository's initrd-units/ when this module is used from a checkout.

# Only included on request: add_dracutmodules+=" earlyext ".
check() {
    return 255
}

depends() {
    echo systemd
    return 0
}

installkernel() {
    # Filesystems of the images and of the merge, loop devices, dm-verity images.
    instmods overlay squashfs erofs loop dm-verity
}

_earlyext_binary() {
    local bin="${EARLYEXT_BINARY:-/usr/bin/earlyext}"
    if [[ ! -x $bin ]]; then
        derror "earlyext: binary not found or not executable: $bin (set EARLYEXT_BINARY)"
        return 1
    fi
    printf '%s\n' "$bin"
}

_earlyext_unit() {
    local u
    for u in "${EARLYEXT_UNIT:-}" "$moddir/earlyext.service" \
             "$(readlink -f "$moddir")/../../initrd-units/earlyext.service"; do
        [[ -n $u && -f $u ]] && { printf '%s\n' "$u"; return 0; }
    done
    derror "earlyext: earlyext.service not found (set EARLYEXT_UNIT)"
    return 1
}

install() {
    local bin unit
    bin=$(_earlyext_binary) || return 1
    unit=$(_earlyext_unit) || return 1

    # The binary, at /usr/bin/earlyext, with the shared libraries it links
    # (glibc, libmount, libblkid, libstdc++, libgcc_s: the Swift stdlib is static).
    inst_binary "$bin" /usr/bin/earlyext || return 1

    # Kernel module handling: the images' filesystems may be modules, and later
    # work (kernel modules inside extensions) runs depmod over the merged tree.
    inst_multiple kmod modprobe depmod
    inst_multiple -o udevadm losetup

    inst_simple "$unit" "$systemdsystemunitdir/earlyext.service"
    mkdir -p "$initdir$systemdsystemunitdir/initrd.target.wants"
    ln_r "$systemdsystemunitdir/earlyext.service" \
        "$systemdsystemunitdir/initrd.target.wants/earlyext.service"
}
