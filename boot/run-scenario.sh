#!/usr/bin/env bash
# run-scenario.sh SCENARIO [--progress]
# Boots one scenario (boot/scenarios/SCENARIO) on fresh copy-on-write copies of
# the cached disks and prints one line per check: "PASS SCENARIO/CHECK" or
# "FAIL SCENARIO/CHECK: reason". Writes "PASSED FAILED SECONDS" to
# out/boot/SCENARIO/result. Needs out/boot/images.env (boot/images.sh).
#   --progress  show the guest's boot milestones while it runs (make demo)
source "$(dirname "$0")/lib.sh"
scenario=$1; progress=${2:-}
sdir=$EE_REPO/boot/scenarios/$scenario
[[ -f $sdir/scenario.conf ]] || die "no scenario $scenario ($sdir/scenario.conf)"
# shellcheck disable=SC1091
source "$EE_OUT/images.env"
CHECKS='' NETWORK=no TIMEOUT=420
# shellcheck disable=SC1091
source "$sdir/scenario.conf"
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

# ---- the Ignition config: generated from config.bu, and its image hashes match
if ! python3 "$EE_REPO/boot/butane.py" --check -d "$EE_REPO/boot/scenarios" "$sdir/config.bu" 2>"$out/config-check.txt"; then
  fail_all "not booted: $(head -c 300 "$out/config-check.txt" | tr '\n' ' ')"; finish
fi
if ! python3 - "$sdir/config.ign" "$EXT_DIR" >"$out/config-check.txt" 2>&1 <<'PY'
import hashlib, json, os, sys
ign, ext = json.load(open(sys.argv[1])), sys.argv[2]
bad = []
for f in ign.get("storage", {}).get("files", []):
    src = f.get("contents", {}).get("source", "")
    if not src.startswith("http://10.0.2.100:8080/"):
        continue
    name = src.rsplit("/", 1)[1]
    path = os.path.join(ext, name)
    if not os.path.exists(path):
        bad.append(f"{name} is not built (boot/extensions/)"); continue
    want = f.get("contents", {}).get("verification", {}).get("hash", "")
    have = "sha256-" + hashlib.sha256(open(path, "rb").read()).hexdigest()
    if want and want != have:
        bad.append(f"{name}: config wants {want[:19]}…, the built image is {have[:19]}… (run boot/configs.sh)")
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
then
  fail_all "not booted: $(cat "$out/config-check.txt")"; finish
fi

# ---- disks: qcow2 overlays over the cached images, thrown away after the boot
qemu-img create -q -f qcow2 -F raw -b "$ROOT_IMG" "$out/root.qcow2"
qemu-img create -q -f qcow2 -F raw -b "$USR_IMG" "$out/usr.qcow2"

cmdline="root=/dev/vda rootfstype=ext4 rw mount.usr=/dev/vdb mount.usrfstype=erofs mount.usrflags=ro"
cmdline+=" console=ttyS0 panic=-1 rd.shell=0 rd.emergency=poweroff clearcpuid=cx16"
cmdline+=" ignition.firstboot ignition.platform.id=qemu"
net=(-nic none)
srv_pid=''
if [[ $NETWORK == yes ]]; then
  # The guest reaches exactly one thing: 10.0.2.100:8080, forwarded by QEMU to the
  # harness's server on 127.0.0.1. restrict=on cuts everything else.
  python3 "$EE_REPO/boot/httpserve.py" "$EXT_DIR" "$out/http.port" "$out/http.log" $((TIMEOUT + 60)) &
  srv_pid=$!
  for _ in $(seq 50); do [[ -s $out/http.port ]] && break; sleep 0.1; done
  [[ -s $out/http.port ]] || { kill "$srv_pid" 2>/dev/null; fail_all "not booted: the HTTP server did not start"; finish; }
  port=$(cat "$out/http.port")
  net=(-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:socat - TCP:127.0.0.1:$port"
       -device virtio-net-pci,netdev=n0)
  cmdline+=" ip=dhcp rd.neednet=1"
fi
echo "$cmdline" >"$out/cmdline"

log "$scenario: booting (TCG, limit ${TIMEOUT}s; logs in ${out#"$EE_REPO"/})"
t0=$(date +%s.%N)
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
  -machine q35,accel=tcg -cpu max -m 2048 -smp "${EARLYEXT_VM_SMP:-1}" -nographic -no-reboot -monitor none \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$cmdline" \
  -drive "file=$out/root.qcow2,if=virtio,format=qcow2" \
  -drive "file=$out/usr.qcow2,if=virtio,format=qcow2,readonly=on" \
  -fw_cfg "name=opt/com.coreos/config,file=$sdir/config.ign" \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  "${net[@]}" \
  -serial "file:$out/serial.log" -serial "file:$out/checks.log" -serial "file:$out/journal.log" \
  </dev/null >"$out/qemu.log" 2>&1 &
qpid=$!
if [[ $progress == --progress ]]; then
  # Milestones from the console while the VM runs; ends with QEMU.
  (sleep 1; tail -n +1 -F --pid=$qpid "$out/serial.log" 2>/dev/null | tr -d '\r' |
    sed -u 's/\x1b\[[0-9;]*m//g' |
    grep --line-buffered -aE 'Ignition \((fetch|files)\)|earlyext|Switching root|Reached target .*(Initrd|Multi-User)|check (PASS|FAIL)' |
    sed -u 's/^/  guest| /' >&2) &
fi
rc=0; wait "$qpid" || rc=$?
boot_s=$(printf '%.0f' "$(echo "$(date +%s.%N) - $t0" | bc)")
[[ -n $srv_pid ]] && { kill "$srv_pid" 2>/dev/null || true; wait "$srv_pid" 2>/dev/null || true; }
rm -f "$out/root.qcow2" "$out/usr.qcow2"

case $rc in
  1) outcome="the guest finished and reported success" ;;
  3) outcome="the guest finished and reported failures" ;;
  0) outcome="the guest powered off without finishing its checks (emergency shell? see serial.log)" ;;
  124|137) outcome="timed out after ${TIMEOUT}s" ;;
  *) outcome="qemu exited $rc ($(tail -n 3 "$out/qemu.log" | tr '\n' ' '))" ;;
esac
log "$scenario: $outcome (the VM ran ${boot_s} s)"
tr -d '\r' <"$out/checks.log" >"$out/checks.txt" 2>/dev/null || true
done_ok=no
grep -aq '^EARLYEXT-CHECK DONE' "$out/checks.txt" && [[ $rc == 1 || $rc == 3 ]] && done_ok=yes
for c in "${checks[@]}"; do
  line=$(grep -aE "^EARLYEXT-CHECK (PASS|FAIL) $c(:|$)" "$out/checks.txt" | tail -n 1 || true)
  case $line in
    "EARLYEXT-CHECK PASS $c")
      if [[ $done_ok == yes ]]; then result PASS "$c"; else result FAIL "$c" "passed in the guest, but $outcome"; fi ;;
    "EARLYEXT-CHECK FAIL $c:"*) result FAIL "$c" "${line#"EARLYEXT-CHECK FAIL $c: "}" ;;
    *) result FAIL "$c" "no result: $outcome" ;;
  esac
done
if ((failed)); then
  {
    echo "---- $scenario: last 40 lines of ${out#"$EE_REPO"/}/serial.log ----"
    tr -d '\r' <"$out/serial.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -n 40 | sed 's/^/  | /'
    echo "---- end of serial.log (also: checks.txt, journal.log, qemu.log) ----"
  } >&2
fi
finish
