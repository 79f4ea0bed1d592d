# Run by earlyext-usr-early.service (modules scenario), before systemd-sysext.service.
# Writes /run/earlyext-test/usr-early: the /usr line of mountinfo, its st_dev and the
# overlay's .systemd-sysext/dev, and the time (CLOCK_MONOTONIC, µs).
mkdir -p /run/earlyext-test
{
  echo "mountinfo $(awk '$5 == "/usr"' /proc/self/mountinfo | tr '\n' '|')"
  echo "st_dev $(stat -c '%d' /usr)"
  echo "sysext_dev $(cat /usr/.systemd-sysext/dev 2>&1)"
  echo "uptime $(cut -d' ' -f1 /proc/uptime)"
} >/run/earlyext-test/usr-early
