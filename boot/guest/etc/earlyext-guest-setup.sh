# Runs once inside the fresh guest tree (mmdebstrap customize hook), then is deleted.
set -eu
echo earlyext-guest >/etc/hostname
# A fixed machine-id: no first-boot logic (presets, firstboot) in the test VMs.
echo 4c1d1c2b9e0a4b7e8a3f5d6c7b8a9e01 >/etc/machine-id
: >/etc/fstab
# Nothing in the test VMs needs these; they only cost boot time under TCG.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
         fstrim.timer getty@tty1.service serial-getty@ttyS0.service console-getty.service \
         systemd-timesyncd.service; do
  ln -sf /dev/null "/etc/systemd/system/$u"
done
# The journal stays in /run: the root is thrown away after each boot anyway.
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\nForwardToConsole=no\n' >/etc/systemd/journald.conf.d/earlyext.conf
mkdir -p /etc/extensions
# systemd-sysext.service as Flatcar has it, enabled (Debian ships it disabled): with
# earlyext's runtime drop-in its condition must fail, so that it does not merge again.
ln -sf /lib/systemd/system/systemd-sysext.service /etc/systemd/system/sysinit.target.wants/systemd-sysext.service
