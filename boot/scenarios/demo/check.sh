# Scenario "demo": shows what earlyext did in the initrd, from inside the booted
# system. The host prints the REPORT lines (make demo).
# shellcheck shell=bash
. /etc/earlyext-test/checklib.sh
udevadm settle --timeout=60 || true

read -r ee_start ee_end ee_result < <(unit_times earlyext.service)
read -r sr_start _ _ < <(unit_times initrd-switch-root.service)
ign_end=$(mono MESSAGE_ID=$MSG_STARTED UNIT=ignition-files.service)

report "\$ earlyext status"
report "$(earlyext status 2>&1)"
report ""
report "\$ systemd-sysext status"
report "$(systemd-sysext status --no-pager 2>&1)"
report ""
report "\$ findmnt /usr"
report "$(findmnt /usr 2>&1)"
report ""
report "\$ earlyext-demo-tool; earlyext-hello"
report "$(earlyext-demo-tool 2>&1)"
report "$(earlyext-hello 2>&1)"
report ""
report "earlyext in the initrd (guest clock, from the journal):"
if [[ $ee_result == done ]]; then
  report "  ignition-files.service finished at $(us_to_s "${ign_end:-0}") s"
  report "  earlyext.service ran from $(us_to_s "$ee_start") s to $(us_to_s "$ee_end") s: $(us_to_s $((ee_end - ee_start))) s (unit start to finish, TCG emulation)"
  report "  initrd-switch-root.service started at $(us_to_s "$sr_start") s"
else
  report "  earlyext.service: $ee_result (start=$ee_start end=$ee_end)"
fi
if [[ -f /run/earlyext/state.json ]]; then
  t=$(tr -d '\n' </run/earlyext/state.json | grep -o '"timings"[^}]*}' | head -n1)
  [[ -n $t ]] && report "  state.json timings: $t"
fi
mu=$(mono MESSAGE_ID=$MSG_STARTED UNIT=multi-user.target)
[[ -n $mu ]] && report "  multi-user.target reached at $(us_to_s "$mu") s"
report "\$ ls /run/earlyext"
report "$(ls -la /run/earlyext 2>&1)"
report "earlyext.service output:"
report "$(journalctl -b -u earlyext.service -o cat --no-pager 2>&1 | sed 's/^/  /')"

ees=$(earlyext status --json 2>&1)
missing=()
for e in hello notes tools; do grep -Eq "\"name\" *: *\"$e\"" <<<"$ees" || missing+=("$e"); done
if [[ $ee_result != done ]]; then
  fail demo-merged "earlyext.service: $ee_result"
elif ((${#missing[@]})); then
  fail demo-merged "earlyext status --json does not list: ${missing[*]}"
elif ! command -v earlyext-demo-tool >/dev/null; then
  fail demo-merged "earlyext-demo-tool (from the tools extension) is not in /usr/bin"
else
  pass demo-merged
fi
finish
