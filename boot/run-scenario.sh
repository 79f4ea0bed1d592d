#!/usr/bin/env bash
# run-scenario.sh SCENARIO [--progress]
# Boots one scenario (boot/scenarios/SCENARIO) on fresh copy-on-write copies of
# the cached disks and prints one line per check: "PASS SCENARIO/CHECK" or
# "FAIL SCENARIO/CHECK: reason". Writes "PASSED FAILED SECONDS" to
# out/boot/SCENARIO/result. Needs out/boot/images.env (boot/images.sh).
#   --progress  show the guest's boot milestones while it runs (make demo)
#
# scenario.conf (sourced):
#   CHECKS="a b"    the checks the guest must report (EARLYEXT-CHECK PASS|FAIL name)
#   NETWORK=yes     the HTTP server and the guest's one network address (guestfwd)
#   NEEDNET=yes     (default: NETWORK) put "ip=dhcp rd.neednet=1" on the kernel command
#                   line, so the initrd brings the network up for Ignition; "no": the
#                   NIC is there, but only what needs the network (earlyext) brings it up
#   BOOTS=1         boot the same disks this many times in a row. Boot 1 is Ignition's
#                   first boot (ignition.firstboot); later boots are ordinary boots.
#                   The check script runs on every boot; a check's result is the one
#                   reported by the last boot that reported it.
#   KARGS=, KARGS_<N>=  extra kernel arguments for every boot, for boot N
#   USR=nodummy     boot with the /usr image USR_IMG_NODUMMY of images.env
#   SERVE=VAR       the HTTP server serves the directory images.env names VAR (default
#                   EXT_DIR, the extension images; the verity scenario: VERITY_DIR)
#   TIMEOUT=420     wall-clock limit per boot, in seconds
#   DISKS="x.sh"    extra disks: each script (in the scenario's directory) builds or finds
#                   its cached disk image and prints its path; attached read-only, in order,
#                   after root and /usr (so /dev/vdc, /dev/vdd, ...)
#   DEFAULT=no      not part of `make boot-test`'s default set (boot-test.sh); run it by name
# A scenario may have host-check.sh: it runs on the host after the boots, with the
# output directory as $1, and prints "PASS name" or "FAIL name: reason" for checks
# only the host can judge (the HTTP server's logs). A host FAIL fails the check.
# Measurements: the guest may print "EARLYEXT-FIGURE KEY VALUE" lines on the check channel;
# the last boot's are collected into figures.txt ("KEY VALUE" per line) for the bench scripts.
# Logs in out/boot/SCENARIO/: serial.log, checks.txt, journal.log, http.log,
# qemu.log, cmdline for boot 1; the same with ".bootN" before the suffix for boot N.
source "$(dirname "$0")/lib.sh"
scenario=$1; progress=${2:-}
sdir=$EE_REPO/boot/scenarios/$scenario
[[ -f $sdir/scenario.conf ]] || die "no scenario $scenario ($sdir/scenario.conf)"
# shellcheck disable=SC1091
source "$EE_OUT/images.env"
CHECKS='' NETWORK=no NEEDNET='' TIMEOUT=420 BOOTS=1 KARGS='' USR='' DISKS=''
SERVE=EXT_DIR
# shellcheck disable=SC1091
source "$sdir/scenario.conf"
NEEDNET=${NEEDNET:-$NETWORK}
TIMEOUT=${EARLYEXT_BOOT_TIMEOUT:-$TIMEOUT}
read -r -a checks <<<"$CHECKS"

out=$EE_OUT/$scenario
rm -rf "$out"; mkdir -p "$out"
passed=0 failed=0
result() { # result STATUS CHECK [REASON]
  if [[ $1 == PASS ]]; then echo "PASS $scenario/$2"; passed=$((passed + 1))
  else echo "FAIL $scenario/$2: $3"; failed=$((failed + 1)); fi
}
fail_all() { local c; for c in "${checks[@]}"; do result FAIL "$c" "$1"; done; }
finish() { echo "$passed $failed ${boot_s:-0}" >"$out/result"; exit 0; }
# sfx N: the log name suffix of boot N ("" for boot 1, ".bootN" after).
sfx() { (($1 == 1)) || printf '.boot%s' "$1"; }

# ---- what the guest may fetch: SERVE's directory (scenario.conf)
serve_dir=${!SERVE:-}
if [[ -z $serve_dir || ! -d $serve_dir ]]; then
  fail_all "not booted: SERVE=$SERVE is not a directory in images.env (boot/images.sh)"; finish
fi

# ---- the Ignition config: generated from config.bu, and its image hashes match
if ! python3 "$EE_REPO/boot/butane.py" --check -d "$EE_REPO/boot/scenarios" "$sdir/config.bu" 2>"$out/config-check.txt"; then
  fail_all "not booted: $(head -c 300 "$out/config-check.txt" | tr '\n' ' ')"; finish
fi
if ! python3 - "$sdir/config.ign" "$serve_dir" >"$out/config-check.txt" 2>&1 <<'PY'
import base64, hashlib, json, os, re, sys, urllib.parse
ign, ext = json.load(open(sys.argv[1])), sys.argv[2]
bad = []
def check(name, want, what):
    path = os.path.join(ext, name)
    if not os.path.exists(path):
        bad.append(f"{name} is not built (boot/extensions/)"); return
    have = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if want and want != have:
        bad.append(f"{name}: {what} wants {want[:12]}…, the built image is {have[:12]}… (run make boot-configs)")
for f in ign.get("storage", {}).get("files", []):
    src = f.get("contents", {}).get("source", "")
    if src.startswith("http://10.0.2.100:8080/"):
        want = f.get("contents", {}).get("verification", {}).get("hash", "")
        check(src.rsplit("/", 1)[1], want.removeprefix("sha256-"), "the config")
    elif src.startswith("data:"):
        # Selection files written inline: Url=http://10.0.2.100:8080/NAME, then SHA256=.
        meta, _, data = src[5:].partition(",")
        raw = base64.b64decode(data) if meta.endswith(";base64") else urllib.parse.unquote_to_bytes(data)
        text = raw.decode("utf-8", "replace")
        for m in re.finditer(r"^Url=http://10\.0\.2\.100:8080/(\S+)\s*\n(?:.*\n)*?SHA256=(?:sha256:)?([0-9a-f]{64})", text, re.M):
            check(m.group(1), m.group(2), f"{f['path']} (SHA256=)")
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
then
  fail_all "not booted: $(cat "$out/config-check.txt")"; finish
fi

# ---- disks: qcow2 overlays over the cached images, kept across this scenario's
# boots, thrown away after the last
usr_img=$USR_IMG
if [[ -n $USR ]]; then
  var=USR_IMG_${USR^^}
  usr_img=${!var:-}
  [[ -n $usr_img && -f $usr_img ]] || { fail_all "not booted: no /usr image '$USR' (USR_IMG_${USR^^} in images.env)"; finish; }
fi
# Extra disks (DISKS=): each builder prints its cached image; read-only, never written.
extra=()
for builder in $DISKS; do
  if ! disk=$(bash "$sdir/$builder" 2>"$out/disk-build.log") || [[ ! -f $disk ]]; then
    cat "$out/disk-build.log" >&2
    fail_all "not booted: $builder did not build its disk: $(tail -n 3 "$out/disk-build.log" | tr '\n' ' ')"; finish
  fi
  cat "$out/disk-build.log" >&2
  extra+=(-drive "file=$disk,if=virtio,format=raw,readonly=on")
done
qemu-img create -q -f qcow2 -F raw -b "$ROOT_IMG" "$out/root.qcow2"
qemu-img create -q -f qcow2 -F raw -b "$usr_img" "$out/usr.qcow2"

boot_s=0
declare -A outcome done_ok
last_boot=0
for ((n = 1; n <= BOOTS; n++)); do
  s=$(sfx "$n")
  cmdline="root=/dev/vda rootfstype=ext4 rw mount.usr=/dev/vdb mount.usrfstype=erofs mount.usrflags=ro"
  cmdline+=" console=ttyS0 panic=-1 rd.shell=0 rd.emergency=poweroff clearcpuid=cx16"
  # Ignition runs only on the first boot of a machine, as on Flatcar.
  ((n == 1)) && cmdline+=" ignition.firstboot"
  cmdline+=" ignition.platform.id=qemu"
  kv=KARGS_$n
  [[ -n $KARGS ]] && cmdline+=" $KARGS"
  [[ -n ${!kv:-} ]] && cmdline+=" ${!kv}"
  net=(-nic none)
  srv_pid=''
  if [[ $NETWORK == yes ]]; then
    # The guest reaches exactly one thing: 10.0.2.100:8080, forwarded by QEMU to the
    # harness's server on 127.0.0.1. restrict=on cuts everything else. One server per
    # boot, with its own log, so each boot's requests can be told apart.
    python3 "$EE_REPO/boot/httpserve.py" "$serve_dir" "$out/http$s.port" "$out/http$s.log" $((TIMEOUT + 60)) &
    srv_pid=$!
    : >"$out/http$s.log"
    for _ in $(seq 50); do [[ -s $out/http$s.port ]] && break; sleep 0.1; done
    [[ -s $out/http$s.port ]] || { kill "$srv_pid" 2>/dev/null; fail_all "not booted: the HTTP server did not start"; finish; }
    port=$(cat "$out/http$s.port")
    net=(-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:socat - TCP:127.0.0.1:$port"
         -device virtio-net-pci,netdev=n0)
    [[ $NEEDNET == yes ]] && cmdline+=" ip=dhcp rd.neednet=1"
  fi
  echo "$cmdline" >"$out/cmdline$s"

  what=$scenario; ((BOOTS > 1)) && what+=" boot $n/$BOOTS"
  log "$what: booting (TCG, limit ${TIMEOUT}s; logs in ${out#"$EE_REPO"/})"
  t0=$(date +%s.%N)
  timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
    -machine q35,accel=tcg -cpu max -m 2048 -smp "${EARLYEXT_VM_SMP:-1}" -nographic -no-reboot -monitor none \
    -kernel "$KERNEL" -initrd "$INITRD" -append "$cmdline" \
    -drive "file=$out/root.qcow2,if=virtio,format=qcow2" \
    -drive "file=$out/usr.qcow2,if=virtio,format=qcow2,readonly=on" \
    "${extra[@]}" \
    -fw_cfg "name=opt/com.coreos/config,file=$sdir/config.ign" \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    "${net[@]}" \
    -serial "file:$out/serial$s.log" -serial "file:$out/checks$s.log" -serial "file:$out/journal$s.log" \
    </dev/null >"$out/qemu$s.log" 2>&1 &
  qpid=$!
  if [[ $progress == --progress ]]; then
    # Milestones from the console while the VM runs; ends with QEMU.
    (sleep 1; tail -n +1 -F --pid=$qpid "$out/serial$s.log" 2>/dev/null | tr -d '\r' |
      sed -u 's/\x1b\[[0-9;]*m//g' |
      grep --line-buffered -aE 'Ignition \((fetch|files)\)|earlyext|Switching root|Reached target .*(Initrd|Multi-User)|check (PASS|FAIL)' |
      sed -u 's/^/  guest| /' >&2) &
  fi
  rc=0; wait "$qpid" || rc=$?
  secs=$(printf '%.0f' "$(echo "$(date +%s.%N) - $t0" | bc)")
  boot_s=$((boot_s + secs))
  [[ -n $srv_pid ]] && { kill "$srv_pid" 2>/dev/null || true; wait "$srv_pid" 2>/dev/null || true; }
  case $rc in
    1) o="the guest finished and reported success" ;;
    3) o="the guest finished and reported failures" ;;
    0) o="the guest powered off without finishing its checks (emergency shell? see serial$s.log)" ;;
    124|137) o="timed out after ${TIMEOUT}s" ;;
    *) o="qemu exited $rc ($(tail -n 3 "$out/qemu$s.log" | tr '\n' ' '))" ;;
  esac
  ((BOOTS > 1)) && o="boot $n: $o"
  outcome[$n]=$o
  log "$what: $o (the VM ran ${secs} s)"
  tr -d '\r' <"$out/checks$s.log" >"$out/checks$s.txt" 2>/dev/null || true
  done_ok[$n]=no
  grep -aq '^EARLYEXT-CHECK DONE' "$out/checks$s.txt" && [[ $rc == 1 || $rc == 3 ]] && done_ok[$n]=yes
  last_boot=$n
  # A later boot only means something after a complete one.
  [[ ${done_ok[$n]} == yes ]] || break
done
rm -f "$out/root.qcow2" "$out/usr.qcow2"
sed -n 's/^EARLYEXT-FIGURE //p' "$out/checks$(sfx "$last_boot").txt" >"$out/figures.txt" 2>/dev/null || true

# ---- host-side checks (the server's logs), after all boots
declare -A host
if [[ -f $sdir/host-check.sh ]]; then
  while IFS= read -r line; do
    case $line in
      "PASS "*) host[${line#PASS }]=PASS ;;
      "FAIL "*:*) c=${line#FAIL }; c=${c%%:*}; host[$c]="FAIL ${line#FAIL "$c": }" ;;
    esac
  done < <(BOOTS=$last_boot bash "$sdir/host-check.sh" "$out" 2>"$out/host-check.err" | tee "$out/host-checks.txt")
fi

for c in "${checks[@]}"; do
  line='' from=0
  for ((n = last_boot; n >= 1; n--)); do
    line=$(grep -aE "^EARLYEXT-CHECK (PASS|FAIL) $c(:|$)" "$out/checks$(sfx "$n").txt" 2>/dev/null | tail -n 1 || true)
    [[ -n $line ]] && { from=$n; break; }
  done
  where=''; ((BOOTS > 1 && from > 0)) && where="boot $from: "
  case $line in
    "EARLYEXT-CHECK PASS $c")
      if [[ ${done_ok[$from]} != yes ]]; then st=FAIL why="passed in the guest, but ${outcome[$from]}"
      else st=PASS why=''; fi ;;
    "EARLYEXT-CHECK FAIL $c:"*) st=FAIL why="$where${line#"EARLYEXT-CHECK FAIL $c: "}" ;;
    *) st=FAIL why="no result: ${outcome[$last_boot]}"
       ((last_boot < BOOTS)) && why+="; boots $((last_boot + 1))-$BOOTS did not run" ;;
  esac
  if [[ ${host[$c]:-} == FAIL* ]]; then
    hw="host: ${host[$c]#FAIL }"
    if [[ $st == PASS ]]; then why=$hw; else why="$why; $hw"; fi
    st=FAIL
  fi
  result "$st" "$c" "$why"
done
if ((failed)); then
  s=$(sfx "$last_boot")
  {
    echo "---- $scenario: last 40 lines of ${out#"$EE_REPO"/}/serial$s.log ----"
    tr -d '\r' <"$out/serial$s.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -n 40 | sed 's/^/  | /'
    echo "---- end of serial$s.log (also: checks$s.txt, journal$s.log, qemu$s.log) ----"
  } >&2
fi
finish
