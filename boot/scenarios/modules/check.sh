# Scenario "modules": checks run in the booted system. The base /usr was built without
# dummy.ko; the kmod-dummy extension ships it under lib/modules/KVER/extra/, and the
# kmod-stale extension ships stale indexes (modules.dep, .alias, .bin) that know only
# "ghost". earlyext regenerated the indexes over the merged tree in the initrd, into
# the merge's top layer. Order matters: alias-autoload runs first, while dummy is not
# loaded yet.
# shellcheck shell=bash
. /etc/earlyext-test/checklib.sh

tick start
KVER=$(uname -r)
MODDIR=/usr/lib/modules/$KVER
status_json=$(earlyext status --json 2>&1); status_rc=$?
status_flat=$(tr -d ' \n' <<<"$status_json")
tick earlyext status
info "earlyext status --json (rc=$status_rc): $(head -c 2500 <<<"$status_json" | tr '\n' ' ')"
journalctl -b -u earlyext.service -o cat --no-pager 2>&1 | tail -n 20 | sed 's/^/earlyext.service: /' | while IFS= read -r l; do info "$l"; done
info "modules.dep in the merged /usr: $(grep -c . "$MODDIR/modules.dep" 2>&1) lines; $(grep -E 'dummy|ghost' "$MODDIR/modules.dep" 2>&1 | tr '\n' ' ')"

tick status and journal read
# ---- alias-autoload --------------------------------------------------------------------
# `ip link add ... type dummy` makes the kernel call modprobe for "rtnl-link-dummy", an
# alias only the merged modules.alias(.bin) resolve to dummy (the stale one says ghost).
problems=()
if [[ -e /sys/module/dummy ]]; then
  by=$(journalctl -b --no-pager -o cat 2>/dev/null | grep -i dummy | head -n 3 | tr '\n' ' ')
  fail alias-autoload "dummy was already loaded before the alias test, so autoloading can't be shown (journal: ${by:-nothing})"
else
  alias_res=$(modprobe --show-depends rtnl-link-dummy 2>&1 | tr '\n' ' ')
  out=$(ip link add ee0 type dummy 2>&1); rc=$?
  if ((rc != 0)); then
    problems+=("'ip link add ee0 type dummy' failed (rc=$rc): $out; modprobe --show-depends rtnl-link-dummy: $alias_res")
  elif [[ ! -e /sys/module/dummy ]]; then
    problems+=("ee0 was created but /sys/module/dummy does not exist")
  elif ! ip link show ee0 >/dev/null 2>&1; then
    problems+=("ee0 does not exist after 'ip link add'")
  fi
  grep -q 'extra/dummy.ko' <<<"$alias_res" || problems+=("rtnl-link-dummy does not resolve to the extension's dummy.ko: $alias_res")
  ip link del ee0 2>/dev/null
  if ((${#problems[@]})); then fail alias-autoload "$(printf '%s; ' "${problems[@]}")"
  else pass alias-autoload; fi
fi

tick alias-autoload done
# ---- module-from-extension-loads ------------------------------------------------------------
problems=()
base=/run/earlyext/base/usr/lib/modules/$KVER
if [[ ! -d $base ]]; then
  problems+=("the base is not at /run/earlyext/base/usr (cannot show it lacks dummy)")
elif [[ -e $base/kernel/drivers/net/dummy.ko.xz ]] || grep -q '/dummy.ko' "$base/modules.dep" 2>/dev/null; then
  problems+=("the base /usr has dummy after all (kernel/drivers/net/dummy.ko.xz or its modules.dep entry)")
fi
[[ -f $MODDIR/extra/dummy.ko.xz ]] || problems+=("$MODDIR/extra/dummy.ko.xz is not in the merged /usr")
# kmod reports /lib/modules/...: /lib is the merged-usr link into /usr.
path=$(modinfo -n dummy 2>&1)
[[ $(readlink -f "$path") == "$MODDIR/extra/dummy.ko.xz" ]] || problems+=("modinfo -n dummy: '$path', not the extension's $MODDIR/extra/dummy.ko.xz")
grep -q '^extra/dummy.ko.xz:' "$MODDIR/modules.dep" 2>/dev/null || problems+=("the merged modules.dep has no extra/dummy.ko.xz")
grep -q ghost "$MODDIR/modules.dep" "$MODDIR/modules.alias" 2>/dev/null && problems+=("the merged indexes still name ghost (kmod-stale's shadow the regenerated ones)")
loopp=$(modinfo -n loop 2>&1)
[[ $(readlink -f "$loopp") == "$MODDIR/kernel/"* ]] || problems+=("a base module does not resolve any more: modinfo -n loop: '$loopp'")
grep -q '"modules":\["dummy"\]' <<<"$status_flat" || problems+=("earlyext status does not list dummy as a module of kmod-dummy")
ip link del ee0 2>/dev/null
rmmod dummy 2>/dev/null
if [[ -e /sys/module/dummy ]]; then
  problems+=("dummy could not be unloaded before modprobe")
else
  out=$(modprobe -v dummy 2>&1); rc=$?
  lsm=$(lsmod | awk '$1 == "dummy"')
  if ((rc != 0)); then problems+=("modprobe dummy failed (rc=$rc): $out")
  elif [[ -z $lsm ]]; then problems+=("modprobe dummy succeeded ($out) but lsmod does not show dummy")
  fi
  grep -qF "/lib/modules/$KVER/extra/dummy.ko.xz" <<<"$out" || problems+=("modprobe -v dummy did not load the extension's file: $out")
fi
if ((${#problems[@]})); then fail module-from-extension-loads "$(printf '%s; ' "${problems[@]}")"
else pass module-from-extension-loads; fi

tick module-from-extension-loads done
# ---- no-double-merge -----------------------------------------------------------------
# The overlay at /usr now is the one earlyext made in the initrd: systemd-sysext.service
# is enabled but its condition (earlyext's runtime drop-in) failed, and /usr's mount ID,
# device and .systemd-sysext/dev are what the first unit of the booted system recorded,
# before systemd-sysext.service could run (earlyext-usr-early.service).
problems=()
sx=$(systemctl show -p UnitFileState -p ActiveState -p ConditionResult -p DropInPaths systemd-sysext.service 2>&1 | tr '\n' ' ')
info "systemd-sysext.service: $sx"
grep -q 'UnitFileState=enabled' <<<"$sx" || problems+=("systemd-sysext.service is not enabled, so the check means nothing: $sx")
grep -q 'ConditionResult=no' <<<"$sx" || problems+=("systemd-sysext.service's condition did not fail: $sx")
grep -q 'ActiveState=inactive' <<<"$sx" || problems+=("systemd-sysext.service is not inactive: $sx")
grep -q '50-earlyext.conf' <<<"$sx" || problems+=("earlyext's drop-in is not among systemd-sysext.service's: $sx")
sxj=$(journalctl -b -u systemd-sysext.service -o cat --no-pager 2>/dev/null | grep -iv 'skipped\|condition' | head -n 3 | tr '\n' ' ')
[[ -z $sxj ]] || problems+=("systemd-sysext.service logged: $sxj")
early=$(cat /run/earlyext-test/usr-early 2>&1)
info "usr-early: $(tr '\n' ' ' <<<"$early")"
mi_now=$(awk '$5 == "/usr"' /proc/self/mountinfo)
n=$(grep -c . <<<"$mi_now")
mi_early=$(sed -n 's/^mountinfo //p' <<<"$early" | tr '|' '\n' | grep .)
id_now=$(awk '{print $1}' <<<"$mi_now"); id_early=$(awk '{print $1}' <<<"$mi_early")
dev_now=$(stat -c '%d' /usr); dev_early=$(sed -n 's/^st_dev //p' <<<"$early")
sdev=$(cat /usr/.systemd-sysext/dev 2>&1); sdev_early=$(sed -n 's/^sysext_dev //p' <<<"$early")
devnum=$(stat -c '%d' /usr); majmin="$((devnum >> 8 & 0xfff)):$(((devnum & 0xff) | (devnum >> 12 & 0xfff00)))"
fm=$(findmnt -n -o ID,FSTYPE /usr 2>/dev/null | tr -s ' ')
info "/usr now: id=$id_now dev=$dev_now ($majmin) sysext_dev=$sdev findmnt='$fm'; early: id=$id_early dev=$dev_early sysext_dev=$sdev_early"
if [[ -z $early || -z $id_early ]]; then
  problems+=("earlyext-usr-early.service recorded nothing: $early")
else
  ((n == 1)) || problems+=("$n mounts at /usr now: $(tr '\n' ';' <<<"$mi_now")")
  [[ $id_now == "$id_early" ]] || problems+=("/usr's mount ID changed during boot: $id_early early, $id_now now")
  [[ $dev_now == "$dev_early" ]] || problems+=("/usr's device changed during boot: $dev_early early, $dev_now now")
  [[ $(awk '{for (i = 7; $i != "-"; i++); print $(i+1)}' <<<"$mi_now") == overlay ]] || problems+=("/usr is not an overlay: $mi_now")
  [[ $sdev == "$majmin" ]] || problems+=("/usr/.systemd-sysext/dev is '$sdev', the overlay is $majmin")
  [[ $sdev == "$sdev_early" ]] || problems+=(".systemd-sysext/dev changed: $sdev_early early, $sdev now")
fi
sds=$(systemd-sysext status --json=short --no-pager 2>&1)
sd_usr=$(grep -o '{"hierarchy":"/usr"[^}]*}' <<<"$sds" || true)
for e in kmod-dummy kmod-stale; do
  grep -q "\"$e\"" <<<"$sd_usr" || problems+=("systemd-sysext status does not list $e for /usr (${sd_usr:-$sds})")
done
if ((${#problems[@]})); then fail no-double-merge "$(printf '%s; ' "${problems[@]}")"
else pass no-double-merge; fi
tick no-double-merge done
finish
