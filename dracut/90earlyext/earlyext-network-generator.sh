#!/bin/sh
# earlyext-network-generator: a systemd generator in the initrd, installed by dracut's
# earlyext module (module-setup.sh) when the initrd has systemd-networkd.
#
# dracut's systemd-networkd module enables systemd-networkd (service, netlink socket,
# wait-online) in every initrd, so networkd comes up on every boot as soon as a link
# appears. The earlyext module takes that enablement out at build time, so the network
# comes up only when something needs it:
# - the kernel command line asks for it (rd.neednet=1, or ip=... unless rd.neednet=0):
#   this generator enables the same units again, for this boot, as dracut had them;
# - earlyext needs a download: it starts systemd-networkd.service itself (writing a DHCP
#   configuration when there is none) and waits for a default route.
# On a boot with neither (every boot after the first, usually) the initrd never
# starts systemd-networkd.
normal=${1:-/run/systemd/generator}
units=/usr/lib/systemd/system
neednet='' ip=''
read -r cmdline </proc/cmdline || cmdline=''
for arg in $cmdline; do
    case $arg in
        rd.neednet|rd.neednet=1|rd.neednet=yes|rd.neednet=on|rd.neednet=true) neednet=1 ;;
        rd.neednet=*) neednet=0 ;;
        ip=*) ip=1 ;;
    esac
done
if [ "$neednet" = 1 ] || { [ -n "$ip" ] && [ "$neednet" != 0 ]; }; then
    mkdir -p "$normal/initrd.target.wants" "$normal/sockets.target.wants" "$normal/network-online.target.wants"
    ln -sf "$units/systemd-networkd.service" "$normal/initrd.target.wants/systemd-networkd.service"
    ln -sf "$units/systemd-networkd.socket" "$normal/sockets.target.wants/systemd-networkd.socket"
    ln -sf "$units/systemd-networkd-wait-online.service" \
        "$normal/network-online.target.wants/systemd-networkd-wait-online.service"
fi
exit 0
