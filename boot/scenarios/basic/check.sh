# Scenario "basic": checks run in the booted system. Ignition wrote this file,
# checklib.sh, earlyext-check.service and /etc/extensions/{hello,notes}.raw (the
# images came from the harness's HTTP server, sha256-verified by Ignition).
# shellcheck shell=bash
. /etc/earlyext-test/checklib.sh
udevadm settle --timeout=60 || true

EXTS=(hello notes)

# ---- merged-before-switch-root ----------------------------------------------
read -r ee_start ee_end ee_result < <(unit_times earlyext.service)
read -r sr_start _ _ < <(unit_times initrd-switch-root.service)
ign_end=$(mono MESSAGE_ID=$MSG_STARTED UNIT=ignition-files.service)
info "earlyext.service start=$ee_start end=$ee_end result=$ee_result; ignition-files done=${ign_end:-?}; initrd-switch-root start=$sr_start"
journalctl -b -u earlyext.service -o short-monotonic --no-pager 2>&1 | tail -n 30 | sed 's/^/earlyext.service: /' | while IFS= read -r l; do info "$l"; done
missing=()
for e in "${EXTS[@]}"; do
  [[ -f /usr/lib/extension-release.d/extension-release.$e ]] || missing+=("extension-release.$e")
done
[[ -x /usr/bin/earlyext-hello ]] || missing+=(/usr/bin/earlyext-hello)
[[ -f /usr/share/earlyext-notes/README.txt ]] || missing+=(/usr/share/earlyext-notes/README.txt)
if [[ $ee_result != done ]]; then
  fail merged-before-switch-root "earlyext.service start job in the initrd: $ee_result (start=$ee_start end=$ee_end); /usr lacks: ${missing[*]:-nothing}"
elif [[ $sr_start == '?' ]]; then
  fail merged-before-switch-root "no 'initrd-switch-root.service starting' entry in the journal"
elif ((ee_end >= sr_start)); then
  fail merged-before-switch-root "earlyext.service finished at ${ee_end}us, not before initrd-switch-root.service started at ${sr_start}us"
elif [[ -n $ign_end ]] && ((ee_start < ign_end)); then
  fail merged-before-switch-root "earlyext.service started at ${ee_start}us, before ignition-files.service finished at ${ign_end}us"
elif ((${#missing[@]})); then
  ee_err=$(journalctl -b -u earlyext.service -o cat --no-pager 2>/dev/null | grep -iE 'error|fail|refus|skip' | head -n 3 | tr '\n' ' ')
  fail merged-before-switch-root "earlyext.service finished before switch-root, but /usr lacks: ${missing[*]}${ee_err:+ (earlyext said: $ee_err)}"
else
  pass merged-before-switch-root
fi

# ---- unit-active -------------------------------------------------------------
state=$(systemctl is-active earlyext-hello.service 2>&1)
frag=$(systemctl show -P FragmentPath earlyext-hello.service 2>&1)
reloads=$(journalctl -b _PID=1 -o short-monotonic --no-pager 2>/dev/null | grep -E 'systemd\[1\]: Reloading' | head -n 3)
hello_out=$(journalctl -b -u earlyext-hello.service -o cat --no-pager 2>/dev/null | grep -c 'hello from the hello extension')
if [[ $state != active ]]; then
  fail unit-active "earlyext-hello.service is '$state' (FragmentPath='$frag')"
elif [[ $(readlink -f "$frag") != /usr/lib/systemd/system/earlyext-hello.service ]]; then
  fail unit-active "earlyext-hello.service loaded from '$frag', not from the extension's /usr/lib/systemd/system"
elif [[ -n $reloads ]]; then
  fail unit-active "PID 1 reloaded during boot: $reloads"
elif [[ $hello_out != 1 ]]; then
  fail unit-active "earlyext-hello.service is active but its output appears $hello_out times in the journal"
else
  pass unit-active
fi

# ---- udev-rule-applied ---------------------------------------------------------
rule=/usr/lib/udev/rules.d/90-earlyext-test.rules
prop=$(udevadm info --query=property --name=/dev/vda 2>&1 | grep '^EARLYEXT_TEST=' || true)
link=$(readlink -f /dev/earlyext-test-root 2>/dev/null || true)
trig=$(systemctl show -P ActiveState systemd-udev-trigger.service)
if [[ ! -f $rule ]]; then
  fail udev-rule-applied "$rule is not in the booted /usr"
elif [[ $prop != EARLYEXT_TEST=1 ]]; then
  fail udev-rule-applied "/dev/vda has no EARLYEXT_TEST=1 in its udev properties (got '${prop:-nothing}')"
elif [[ $link != /dev/vda ]]; then
  fail udev-rule-applied "/dev/earlyext-test-root does not point to /dev/vda (got '${link:-missing}')"
elif [[ $trig != active ]]; then
  fail udev-rule-applied "systemd-udev-trigger.service (coldplug) is '$trig'"
else
  pass udev-rule-applied
fi

# ---- single-overlay ------------------------------------------------------------
# mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
mi=$(awk '$5 == "/usr" { for (i = 7; $i != "-"; i++); print $1, $2, $5, $(i+1), $(i+2) }' /proc/self/mountinfo)
n=$(printf '%s\n' "$mi" | grep -c . || true)
fm=$(findmnt -n -o TARGET,FSTYPE,SOURCE /usr 2>&1)
fmn=$(printf '%s\n' "$fm" | grep -c . || true)
info "mountinfo at /usr: $mi"
if [[ $n != 1 ]]; then
  fail single-overlay "$n mounts at /usr in /proc/self/mountinfo: $(printf '%s; ' "$mi")"
elif [[ $(awk '{print $4}' <<<"$mi") != overlay ]]; then
  fail single-overlay "the mount at /usr is $(awk '{print $4}' <<<"$mi"), not overlay: $mi"
elif [[ $fmn != 1 ]] || [[ $(awk '{print $2}' <<<"$fm") != overlay ]]; then
  fail single-overlay "findmnt /usr: $fm"
else
  pass single-overlay
fi

# ---- status-consistent -----------------------------------------------------------
ees=$(earlyext status --json 2>&1); eerc=$?
sds=$(systemd-sysext status --json=short --no-pager 2>&1); sdrc=$?
info "/run/earlyext: $(ls -A /run/earlyext 2>&1 | tr '\n' ' ')"
info "state.json: $(head -c 3000 /run/earlyext/state.json 2>&1 | tr '\n' ' ')"
info "earlyext status --json (rc=$eerc): $(printf '%s' "$ees" | head -c 2000 | tr '\n' ' ')"
info "systemd-sysext status (rc=$sdrc): $(printf '%s' "$sds" | tr '\n' '|')"
# 252 prints [{"hierarchy":"/usr","extensions":["a","b"],"since":...},...] or "extensions":"none"
sd_usr=$(grep -o '{"hierarchy":"/usr"[^}]*}' <<<"$sds" || true)
problems=()
((eerc == 0)) || problems+=("earlyext status --json exited $eerc")
((sdrc == 0)) || problems+=("systemd-sysext status exited $sdrc")
# earlyext must see its initrd merge as the one mounted at /usr now (the record is relative to
# the root: the initrd merged /sysroot/usr, this is /usr).
tr -d ' \n' <<<"$ees" | grep -q '"path":"/usr","target":"/usr"' || problems+=("earlyext status does not give /usr as the target")
tr -d ' \n' <<<"$ees" | grep -q '"mounted":true' || problems+=("earlyext status says the merge is not mounted")
for e in "${EXTS[@]}"; do
  grep -Eq "\"name\" *: *\"$e\"" <<<"$ees" || problems+=("earlyext status --json does not list $e")
  grep -q "\"$e\"" <<<"$sd_usr" || problems+=("systemd-sysext status does not list $e for /usr (${sd_usr:-no /usr entry})")
done
# ... and the other way round: nothing systemd-sysext sees that earlyext does not report.
for e in $(grep -o '"extensions":\[[^]]*\]' <<<"$sd_usr" | sed 's/^"extensions"://' | grep -o '"[^"]*"' | tr -d '"'); do
  grep -Eq "\"name\" *: *\"$e\"" <<<"$ees" || problems+=("systemd-sysext reports $e for /usr, earlyext status does not")
done
if ((${#problems[@]})); then
  fail status-consistent "$(printf '%s; ' "${problems[@]}")"
else
  pass status-consistent
fi

finish
