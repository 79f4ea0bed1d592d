# Guest side of the boot harness: sourced by each scenario's check.sh, which
# Ignition writes to /etc/earlyext-test/ and earlyext-check.service runs once the
# real root reached multi-user.target.
#
# Channels (QEMU serial ports, files on the host under out/boot/<scenario>/):
#   ttyS0  console (kernel, systemd, earlyext's own output)  -> serial.log
#   ttyS1  results: "EARLYEXT-CHECK PASS name" / "... FAIL name: reason",
#          "EARLYEXT-INFO ...", and "EARLYEXT-CHECK DONE" last -> checks.log
#   ttyS2  the whole journal of this boot, short-monotonic   -> journal.log
# The result goes back through isa-debug-exit (port 0xf4): the guest writes 0
# when every check passed and 1 otherwise; QEMU exits with (v<<1)|1, so 1 or 3.
# A plain poweroff (QEMU exits 0) therefore always means failure to the host.
# shellcheck shell=bash

CHAN=/dev/ttyS1
JCHAN=/dev/ttyS2
FAILED=0
stty -F "$CHAN" raw -echo 2>/dev/null || true
stty -F "$JCHAN" raw -echo 2>/dev/null || true

_oneline() { tr '\n\r\t' '   ' | sed 's/  */ /g; s/ $//'; }
pass() { echo "EARLYEXT-CHECK PASS $1" >"$CHAN"; echo "check PASS $1"; }
fail() {
  local name=$1; shift
  local reason; reason=$(printf '%s' "$*" | _oneline)
  echo "EARLYEXT-CHECK FAIL $name: $reason" >"$CHAN"; echo "check FAIL $name: $reason"
  FAILED=1
}
info() { printf '%s\n' "$*" | sed 's/^/EARLYEXT-INFO /' >"$CHAN"; }
# tick LABEL: an EARLYEXT-INFO line with the guest's uptime (where a check spends its time).
tick() { local up _; read -r up _ </proc/uptime; info "t=${up}s $*"; }
# report: free-form text for the host to show (make demo prints these lines).
report() { printf '%s\n' "$*" | sed 's/^/EARLYEXT-REPORT /' >"$CHAN"; }

# mono FIELD=VALUE...: __MONOTONIC_TIMESTAMP (µs) of the first matching journal entry.
# Each journalctl run costs seconds under TCG, so the usual query, a unit's job message
# (MESSAGE_ID=job id, UNIT=unit), is answered from one snapshot of all job messages of
# this boot, taken at the first such query (jobs_snapshot).
mono() {
  if (($# == 2)) && [[ $1 == MESSAGE_ID=* && $2 == UNIT=* ]] && jobs_snapshot; then
    awk -v id="${1#MESSAGE_ID=}" -v u="${2#UNIT=}" '$2 == id && $3 == u { print $1; exit }' "$JOBS"
    return
  fi
  journalctl -b -o export "$@" 2>/dev/null | sed -n 's/^__MONOTONIC_TIMESTAMP=//p' | head -n1
}
# jobs_snapshot: $JOBS holds "MONOTONIC_US MESSAGE_ID UNIT" for every start job message
# (begun, done, failed) in this boot's journal so far, in journal order.
JOBS=/run/earlyext-test-jobs
jobs_snapshot() {
  [[ -s $JOBS ]] && return 0
  journalctl -b -o export --output-fields=MESSAGE_ID,UNIT \
      MESSAGE_ID=$MSG_STARTING MESSAGE_ID=$MSG_STARTED MESSAGE_ID=$MSG_FAILED 2>/dev/null |
    awk '/^__MONOTONIC_TIMESTAMP=/ { m = substr($0, 23) } /^MESSAGE_ID=/ { id = substr($0, 12) }
         /^UNIT=/ { u = substr($0, 6) }
         /^$/ { if (m != "" && u != "") print m, id, u; m = id = u = "" }
         END { if (m != "" && u != "") print m, id, u }' >"$JOBS"
  [[ -s $JOBS ]]
}
# mono_last FIELD=VALUE...: the same for the last matching entry.
mono_last() { journalctl -b -o export "$@" 2>/dev/null | sed -n 's/^__MONOTONIC_TIMESTAMP=//p' | tail -n1; }

# systemd's catalog IDs for start jobs (see journalctl --list-catalog).
MSG_STARTING=7d4958e842da4a758f6c1cdc7b36dcc5   # a start job has begun
MSG_STARTED=39f53479d3a045ac8e11786248231fbf    # a start job finished successfully
MSG_FAILED=be02cf6855d2428ba40df7e9d022f03d     # a start job failed

# unit_times UNIT: "START_US END_US RESULT" of UNIT's start job in this boot's
# journal, from PID 1's messages (works for initrd units after switch-root).
unit_times() {
  local s e r=done
  s=$(mono MESSAGE_ID=$MSG_STARTING UNIT="$1")
  e=$(mono MESSAGE_ID=$MSG_STARTED UNIT="$1")
  if [[ -z $e ]]; then e=$(mono MESSAGE_ID=$MSG_FAILED UNIT="$1"); [[ -n $e ]] && r=failed; fi
  [[ -z $e ]] && r=missing
  echo "${s:-?} ${e:-?} $r"
}

# us_to_s MICROSECONDS -> seconds with 3 decimals.
us_to_s() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1e6 }'; }

finish() {
  journalctl -b -o short-monotonic --no-pager >"$JCHAN" 2>&1 || true
  echo "EARLYEXT-CHECK DONE failed=$FAILED" >"$CHAN"
  sync
  # isa-debug-exit: QEMU exits at once with (FAILED<<1)|1. The guest kernel has
  # no /dev/port, so a 400-byte static program does ioperm() + OUT: its source is
  # common/isa-debug-exit.S (as + ld -s -n --build-id=none), its bytes are here.
  local exe=/run/earlyext-test-isa-debug-exit err
  echo f0VMRgIBAQAAAAAAAAAAAAIAPgABAAAAeABAAAAAAABAAAAAAAAAANAAAAAAAAAAAAAAAEAAOAABAEAAAwACAAEAAAAFAAAAeAAAAAAAAAB4AEAAAAAAAHgAQAAAAAAARgAAAAAAAABGAAAAAAAAAAEAAAAAAAAAv/QAAAC+AQAAALoBAAAAuK0AAAAPBUiFwHUfMf9IjXQk8LoBAAAAMcAPBUiD+AF1CYpEJPBmuvQA7r8BAAAAuDwAAAAPBQAuc2hzdHJ0YWIALnRleHQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALAAAAAQAAAAYAAAAAAAAAeABAAAAAAAB4AAAAAAAAAEYAAAAAAAAAAAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAQAAAAMAAAAAAAAAAAAAAAAAAAAAAAAAvgAAAAAAAAARAAAAAAAAAAAAAAAAAAAAAQAAAAAAAAAAAAAAAAAAAA== | base64 -d >"$exe" && chmod 0755 "$exe"
  err=$(printf "\\x0$FAILED" | "$exe" 2>&1)
  echo "EARLYEXT-INFO isa-debug-exit did not stop QEMU: $err" >"$CHAN"
  sleep 5
  # Only reached if the port write did not stop QEMU: the host sees exit 0 = failure.
  systemctl poweroff --force --force
}
