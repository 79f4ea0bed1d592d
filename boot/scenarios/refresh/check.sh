# Scenario "refresh": checks run in the booted system. The initrd merged ticker 1; its
# service earlyext-ticker.service is running. The check swaps ticker 2 in with
# `earlyext refresh` while a reader loops over a base file, an extension file and an
# extension binary, counting failed reads; then refreshes again with nothing changed.
# The initrd also merged restarter 1, whose EXTENSION_RESTART_UNITS names its service:
# untouched by ticker's refresh, restarted (the new version's) by its own.
# shellcheck shell=bash
. /etc/earlyext-test/checklib.sh

DATA=/usr/share/earlyext-ticker/VERSION
problems=()
tick start
# The service from version 1, and its main process.
for _ in $(seq 30); do [[ -s /run/earlyext-ticker.state ]] && break; sleep 1; done
svc_state=$(systemctl is-active earlyext-ticker.service 2>&1)
pid=$(systemctl show -P MainPID earlyext-ticker.service 2>&1)
read -r t_pid t_started t_reads0 t_fail0 t_last0 </run/earlyext-ticker.state 2>/dev/null
info "before: earlyext-ticker.service $svc_state, MainPID $pid, state '$t_pid $t_started $t_reads0 $t_fail0 $t_last0', $DATA=$(cat $DATA 2>&1)"
if [[ $svc_state != active || $t_started != 1 || $(cat $DATA 2>&1) != 1 ]]; then
  fail runtime-refresh-no-gap "before the refresh: earlyext-ticker.service is '$svc_state' (state '$t_pid $t_started'), $DATA is '$(cat $DATA 2>&1)', want version 1 running"
  finish
fi

# restarter's service (version 1), before anything is refreshed.
for _ in $(seq 30); do [[ -s /run/earlyext-restarter.state ]] && break; sleep 1; done
r_pid0=$(systemctl show -P MainPID earlyext-restarter.service 2>&1)
read -r r_spid0 r_sver0 </run/earlyext-restarter.state 2>/dev/null
info "before: earlyext-restarter.service $(systemctl is-active earlyext-restarter.service 2>&1), MainPID $r_pid0, state '$r_spid0 $r_sver0'"

# The reader: bash builtins only (no fork per read), until /run/earlyext-test-stop.
rm -f /run/earlyext-test-stop /run/earlyext-test-reader
(
  reads=0 fails=0 v1=0 v2=0 other=0 first_fail=''
  while [[ ! -e /run/earlyext-test-stop ]]; do
    for f in /usr/lib/os-release $DATA /usr/bin/earlyext-ticker; do
      if read -r line <"$f"; then
        reads=$((reads + 1))
        if [[ $f == "$DATA" ]]; then
          case $line in 1) v1=$((v1 + 1)) ;; 2) v2=$((v2 + 1)) ;; *) other=$((other + 1)) ;; esac
        fi
      else
        fails=$((fails + 1)); [[ -n $first_fail ]] || first_fail="$f at $(cut -d' ' -f1 /proc/uptime)"
      fi
    done
  done
  echo "$reads $fails $v1 $v2 $other $first_fail" >/run/earlyext-test-reader
) 2>/dev/null &
reader=$!
tick reader started
sleep 2
# v2 replaces v1 under the same name, atomically, as an update tool would.
cp /var/lib/earlyext-test/ticker-2-x86-64.raw /etc/extensions/.ticker.raw.new &&
  mv -f /etc/extensions/.ticker.raw.new /etc/extensions/ticker.raw
t0=$(cut -d' ' -f1 /proc/uptime)
refresh_out=$(earlyext refresh 2>&1); refresh_rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
sleep 2
touch /run/earlyext-test-stop
wait "$reader"
tick reader stopped
read -r reads fails v1 v2 other first_fail </run/earlyext-test-reader 2>/dev/null
info "earlyext refresh (rc=$refresh_rc, ${t0}s-${t1}s uptime): $(tr '\n' ' ' <<<"$refresh_out")"
info "reader: $reads reads, $fails failed (first: ${first_fail:-none}), $DATA read as 1: $v1, as 2: $v2, other: $other"

# Again, with nothing changed.
again_out=$(earlyext refresh 2>&1); again_rc=$?
tick second refresh
info "earlyext refresh again (rc=$again_rc): $(tr '\n' ' ' <<<"$again_out")"

svc_after=$(systemctl is-active earlyext-ticker.service 2>&1)
pid_after=$(systemctl show -P MainPID earlyext-ticker.service 2>&1)
sleep 1
read -r a_pid a_started a_reads a_fail a_last </run/earlyext-ticker.state 2>/dev/null
status_flat=$(earlyext status --json 2>&1 | tr -d ' \n')
tick status
mi=$(awk '$5 == "/usr"' /proc/self/mountinfo)
info "after: earlyext-ticker.service $svc_after, MainPID $pid_after, state '$a_pid $a_started $a_reads $a_fail $a_last'; mountinfo /usr: $(tr '\n' ';' <<<"$mi")"

((refresh_rc == 0)) || problems+=("earlyext refresh exited $refresh_rc: $(tail -n 3 <<<"$refresh_out" | tr '\n' ' ')")
[[ -n $reads ]] || problems+=("the reader reported nothing")
[[ ${fails:-1} == 0 ]] || problems+=("$fails of $((reads + fails)) reads failed during the refresh (first: $first_fail)")
((${v1:-0} > 0 && ${v2:-0} > 0)) || problems+=("the reader did not see both versions ($v1 × 1, $v2 × 2): it did not span the swap")
[[ ${other:-0} == 0 ]] || problems+=("the reader saw $other values of $DATA that are neither 1 nor 2")
[[ $svc_after == active && $pid_after == "$pid" ]] ||
  problems+=("the old service did not keep running: earlyext-ticker.service is '$svc_after', MainPID $pid -> $pid_after")
kill -0 "$pid" 2>/dev/null || problems+=("the old service's process $pid is gone")
[[ $a_pid == "$pid" && $a_started == 1 ]] || problems+=("the ticker state is from '$a_pid' version '$a_started', not the old service $pid version 1")
[[ ${a_fail:-x} == 0 ]] || problems+=("the old service failed $a_fail of its reads")
((${a_reads:-0} > ${t_reads0:-0})) || problems+=("the old service stopped reading ($t_reads0 -> $a_reads)")
[[ $(cat $DATA 2>&1) == 2 ]] || problems+=("$DATA is '$(cat $DATA 2>&1)' after the refresh, want 2")
[[ -f /usr/share/earlyext-ticker/only-in-2.txt ]] || problems+=("/usr/share/earlyext-ticker/only-in-2.txt (new in version 2) is not visible")
grep -q 'version 2' /usr/lib/systemd/system/earlyext-ticker.service 2>/dev/null || problems+=("the unit file in /usr is not version 2's")
grep -q '"name":"ticker"' <<<"$status_flat" && grep -q '"version":"2"' <<<"$status_flat" ||
  problems+=("earlyext status does not list ticker version 2: $(head -c 400 <<<"$status_flat")")
(($(grep -c . <<<"$mi") == 1)) && [[ $(awk '{for (i = 7; $i != "-"; i++); print $(i+1)}' <<<"$mi") == overlay ]] ||
  problems+=("after the refresh /usr is not exactly one overlay: $(tr '\n' ';' <<<"$mi")")
((again_rc == 0)) || problems+=("the second earlyext refresh exited $again_rc: $(tail -n 3 <<<"$again_out" | tr '\n' ' ')")
grep -qi 'nothing changed' <<<"$again_out" || problems+=("the second earlyext refresh did not say 'nothing changed': $(tr '\n' ' ' <<<"$again_out" | head -c 300)")
if ((${#problems[@]})); then fail runtime-refresh-no-gap "$(printf '%s; ' "${problems[@]}")"
else pass runtime-refresh-no-gap; fi

# restart-units-honoured. The initrd said once that restarting is not needed there.
rproblems=()
initrd_line=$(journalctl -b -u earlyext.service -o cat --no-pager 2>/dev/null | grep 'not needed in the initrd')
tick journalctl -u earlyext.service
info "initrd: $initrd_line"
[[ $(grep -c . <<<"$initrd_line") == 1 ]] &&
  grep -q 'EXTENSION_RESTART_UNITS of restarter (earlyext-restarter.service)' <<<"$initrd_line" ||
  rproblems+=("earlyext.service in the initrd did not log exactly one 'not needed in the initrd' line naming restarter's unit: '$initrd_line'")
# ticker's refresh left restarter (unchanged) alone.
r_pid1=$(systemctl show -P MainPID earlyext-restarter.service 2>&1)
[[ -n $r_spid0 && $r_sver0 == 1 && $r_pid0 == "$r_spid0" ]] ||
  rproblems+=("before the refreshes earlyext-restarter.service is not version 1's: MainPID $r_pid0, state '$r_spid0 $r_sver0'")
[[ $r_pid1 == "$r_pid0" ]] || rproblems+=("ticker's refresh restarted the untouched restarter: MainPID $r_pid0 -> $r_pid1")
grep -q 'earlyext-restarter' <<<"$refresh_out$again_out" &&
  rproblems+=("ticker's refreshes acted on restarter's unit: $(grep 'earlyext-restarter' <<<"$refresh_out$again_out" | tr '\n' ' ')")
# restarter 2 replaces 1; the refresh reloads the manager and restarts the service (--no-block).
cp /var/lib/earlyext-test/restarter-2-x86-64.raw /etc/extensions/.restarter.raw.new &&
  mv -f /etc/extensions/.restarter.raw.new /etc/extensions/restarter.raw
r_out=$(earlyext refresh 2>&1); r_rc=$?
tick restarter refresh
for _ in $(seq 60); do
  read -r r_spid2 r_sver2 </run/earlyext-restarter.state 2>/dev/null
  r_pid2=$(systemctl show -P MainPID earlyext-restarter.service 2>&1)
  [[ $r_sver2 == 2 && $r_pid2 == "$r_spid2" ]] && break
  sleep 0.5
done
r_active=$(systemctl is-active earlyext-restarter.service 2>&1)
r_desc=$(systemctl show -P Description earlyext-restarter.service 2>&1)
t_pid2=$(systemctl show -P MainPID earlyext-ticker.service 2>&1)
info "earlyext refresh of restarter (rc=$r_rc): $(tr '\n' ' ' <<<"$r_out")"
info "after: earlyext-restarter.service $r_active, MainPID $r_pid0 -> $r_pid2, state '$r_spid2 $r_sver2', Description '$r_desc'; ticker MainPID $pid -> $t_pid2"
((r_rc == 0)) || rproblems+=("earlyext refresh exited $r_rc: $(tail -n 3 <<<"$r_out" | tr '\n' ' ')")
grep -q 'reloaded the service manager (asked by restarter)' <<<"$r_out" ||
  rproblems+=("the refresh did not say it reloaded the service manager for restarter")
grep -q 'restart of earlyext-restarter.service queued (EXTENSION_RESTART_UNITS of restarter)' <<<"$r_out" ||
  rproblems+=("the refresh did not say it restarts earlyext-restarter.service")
[[ $r_active == active && $r_sver2 == 2 && $r_pid2 == "$r_spid2" ]] ||
  rproblems+=("earlyext-restarter.service is '$r_active', MainPID $r_pid2, state '$r_spid2 $r_sver2': not version 2's process")
[[ $r_pid2 != "$r_pid0" ]] || rproblems+=("earlyext-restarter.service still runs the old MainPID $r_pid0")
kill -0 "$r_pid0" 2>/dev/null && rproblems+=("version 1's process $r_pid0 is still alive")
[[ $r_desc == *'version 2'* ]] || rproblems+=("the manager has not loaded version 2's unit (Description '$r_desc'): no daemon-reload?")
[[ $t_pid2 == "$pid" ]] || rproblems+=("restarter's refresh touched ticker's service: MainPID $pid -> $t_pid2")
if ((${#rproblems[@]})); then fail restart-units-honoured "$(printf '%s; ' "${rproblems[@]}")"
else pass restart-units-honoured; fi

tick done
finish
