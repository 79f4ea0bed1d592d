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

# The network in the initrd only when needed. dracut's systemd-networkd module
# (installed before this one) enables networkd in every initrd; this takes that out
# and installs a generator that enables it again on boots whose kernel command line
# asks for the network (rd.neednet=1, ip=). earlyext starts networkd by itself when
# a download needs it. earlyext_network_on_demand="no" in dracut.conf keeps dracut's
# behaviour (networkd on every boot).
_earlyext_network_on_demand() {
    if ! dracut_module_included systemd-networkd; then
        dwarn "earlyext: no systemd-networkd in this initrd: extensions that must be downloaded at boot (selection files, sysupdate transfers) can't be; add_dracutmodules+=\" systemd-networkd \""
        return 0
    fi
    [[ ${earlyext_network_on_demand:-yes} == yes ]] || return 0
    # networkd.service's Also= takes systemd-network-generator.service along, which
    # turns ip= into .network files: that one stays enabled.
    if $SYSTEMCTL -q --root "$initdir" disable \
        systemd-networkd.service systemd-networkd.socket systemd-networkd-wait-online.service; then
        $SYSTEMCTL -q --root "$initdir" enable systemd-network-generator.service ||
            dwarn "earlyext: could not enable systemd-network-generator.service: ip= does nothing"
    else
        dwarn "earlyext: could not disable systemd-networkd in the initrd: it starts on every boot"
    fi
    inst_script "$moddir/earlyext-network-generator.sh" \
        "$systemdutildir/system-generators/earlyext-network-generator"
}

# Libraries earlyext loads with dlopen() on first use: they are not in its NEEDED list, so
# inst_binary does not bring them. libcryptsetup for dm-verity images (without it activation
# fails with "cannot load libcryptsetup.so.12"), libcurl for downloads. Their own dependencies
# (libdevmapper, libjson-c, libargon2, ...; libcurl's) are installed from ldd's list:
# dracut-install resolves dependencies only of files with an executable bit, and Debian's
# libraries are 0644 (without this the initrd had libcryptsetup but not libdevmapper).
_earlyext_dlopen_libraries() {
    local soname dir found dep
    for soname in libcryptsetup.so.12 libcurl.so.4 libkmod.so.2; do
        found=
        for dir in $libdirs; do
            if [[ -e $dracutsysrootdir$dir/$soname ]]; then
                inst_library "$dir/$soname" && found=yes
                while read -r dep; do
                    inst_library "$dep" || found=
                done < <(${DRACUT_LDD:-ldd} "$dracutsysrootdir$dir/$soname" 2>/dev/null |
                         sed -n 's|.*=> *\(/[^ ]*\) (0x.*|\1|p')
                break
            fi
        done
        [[ $found ]] || dwarn "earlyext: $soname (or a library it needs) is not installed from $libdirs: earlyext cannot use it in the initrd"
    done
}

# dm-verity activation with udev running: libcryptsetup creates the device with a udev cookie
# (libdevmapper's udev synchronisation, on whenever /run/udev/control exists) and then waits,
# with no timeout, until a udev rule calls "dmsetup udevcomplete" for it. Without
# 95-dm-notify.rules in the initrd that wait never ends: the verity boot scenario hung right
# after the first successful activation. 55-dm.rules (Debian's name; 10-dm.rules elsewhere)
# is the rest of device-mapper's udev handling (/dev/mapper names), as the booted system has it.
_earlyext_dm_udev_sync() {
    inst_multiple -o dmsetup
    inst_rules 10-dm.rules 55-dm.rules 95-dm-notify.rules
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

    # Downloads in the initrd (selection files, sysupdate transfers): systemctl, with
    # which earlyext starts systemd-networkd when a download needs the network; the CA
    # bundle for https:// (the first one earlyext itself looks for); gpgv for
    # Verify=yes transfers. hwdb.d in extensions: systemd-hwdb compiles the merged one.
    inst_multiple systemctl
    inst_multiple -o gpgv systemd-hwdb
    local ca
    for ca in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt \
              /etc/ssl/ca-bundle.pem /etc/ssl/cert.pem; do
        if [[ -f $dracutsysrootdir$ca ]]; then
            inst_simple "$ca"
            break
        fi
    done
    _earlyext_network_on_demand
    _earlyext_dlopen_libraries
    _earlyext_dm_udev_sync

    # Certificates trusted for signed (dm-verity) images: in the initrd, earlyext trusts
    # the initrd's own verity.d as well as the root's. The build host's go in.
    local d crt
    for d in /etc/verity.d /usr/local/lib/verity.d /usr/lib/verity.d; do
        for crt in "$dracutsysrootdir$d"/*.crt; do
            [[ -f $crt ]] && inst_simple "${crt#"$dracutsysrootdir"}"
        done
    done

    inst_simple "$unit" "$systemdsystemunitdir/earlyext.service"
    mkdir -p "$initdir$systemdsystemunitdir/initrd.target.wants"
    ln_r "$systemdsystemunitdir/earlyext.service" \
        "$systemdsystemunitdir/initrd.target.wants/earlyext.service"
}
