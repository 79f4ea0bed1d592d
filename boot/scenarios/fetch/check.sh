# Scenario "fetch": checks run in the booted system, on both boots of the same disks.
# Boot 1 (ignition.firstboot): Ignition wrote a sysupdate transfer and a selection file,
# inline; the initrd's earlyext brought the network up, downloaded both images from the
# harness's server, and merged them. Boot 2: everything is local, so nothing is fetched
# and the initrd never starts systemd-networkd. The host checks its server's logs on top
# (host-check.sh).
# shellcheck shell=bash
. /etc/earlyext-test/checklib.sh

URL=http://10.0.2.100:8080
TRANSFER=/etc/sysupdate.versioned.d/versioned.conf
SELECTION=/etc/earlyext/select.d/notes.conf
WANT_VERSIONED="versioned 1.10.0 x86-64"
WANT_TARGET=/opt/extensions/versioned/versioned-1.10.0-x86-64.raw

tick start
# Everything earlyext said in this boot (the initrd's run is in the same journal).
ee_log=$(journalctl -b -u earlyext.service -o cat --no-pager 2>&1)
printf '%s\n' "$ee_log" | tail -n 30 | sed 's/^/earlyext.service: /' | while IFS= read -r l; do info "$l"; done
tick journalctl -u earlyext.service
status_json=$(earlyext status --json 2>&1); status_rc=$?
tick earlyext status
status_flat=$(tr -d ' \n' <<<"$status_json")
info "earlyext status --json (rc=$status_rc): $(head -c 3000 <<<"$status_json" | tr '\n' ' ')"
read -r ee_start ee_end ee_result < <(unit_times earlyext.service)
tick unit_times
read -r sr_start _ _ < <(unit_times initrd-switch-root.service)
nd_start=$(mono MESSAGE_ID=$MSG_STARTING UNIT=systemd-networkd.service)
tick unit_times, mono
info "earlyext.service start=$ee_start end=$ee_end result=$ee_result; initrd-switch-root start=$sr_start; systemd-networkd first start=${nd_start:-never}"

# merged_problems: what is missing from the merge in the booted /usr and earlyext status.
merged_problems() {
  local p=() e
  [[ $(cat /usr/share/earlyext-versioned/build 2>&1) == "$WANT_VERSIONED" ]] ||
    p+=("/usr/share/earlyext-versioned/build is '$(head -c 100 /usr/share/earlyext-versioned/build 2>&1)', want '$WANT_VERSIONED'")
  [[ -f /usr/share/earlyext-notes/README.txt ]] || p+=("/usr/share/earlyext-notes/README.txt is not in the booted /usr")
  ((status_rc == 0)) || p+=("earlyext status --json exited $status_rc")
  local usr; usr=$(grep -o '"hierarchies":\[{"path":"/usr"[^]]*\]' <<<"$status_flat")
  for e in versioned notes; do
    grep -q "\"$e\"" <<<"$usr" || p+=("earlyext status --json does not list $e as merged into /usr (${usr:-no /usr hierarchy})")
  done
  [[ $ee_result == done ]] || p+=("earlyext.service in the initrd: $ee_result")
  [[ $sr_start != '?' && $ee_end != '?' ]] && ((ee_end < sr_start)) ||
    p+=("earlyext.service did not finish (at ${ee_end}us) before initrd-switch-root (at ${sr_start}us)")
  ((${#p[@]} == 0)) || printf '%s; ' "${p[@]}"
}

# fetched_urls: the "url" fields of state.json's "fetched" array, one a line.
fetched_urls() { sed -n 's/.*"fetched":\[\(.*\)\],"fetch_problems".*/\1/p' <<<"$status_flat" | grep -o '"url":"[^"]*"' | cut -d'"' -f4; }
fetched_field() { grep -o '"fetched":\[[^]]*\]' <<<"$status_flat" || echo "no fetched array"; }

if grep -qw ignition.firstboot /proc/cmdline; then
  # ================================================================ boot 1
  # ---- ignition-wrote-selection ----------------------------------------------------
  expected_transfer='[Transfer]
Verify=false

[Source]
Type=url-file
Path=http://10.0.2.100:8080/
MatchPattern=versioned-@v-%a.raw

[Target]
InstancesMax=3
Type=regular-file
Path=/opt/extensions/versioned
CurrentSymlink=/etc/extensions/versioned.raw'
  problems=()
  if [[ ! -f $TRANSFER ]]; then
    problems+=("$TRANSFER is missing")
  elif [[ $(cat "$TRANSFER") != "$expected_transfer" ]]; then
    problems+=("$TRANSFER differs from bakery's shape: $(diff <(printf '%s\n' "$expected_transfer") "$TRANSFER" | head -n 8 | tr '\n' '|')")
  fi
  if [[ ! -f $SELECTION ]]; then
    problems+=("$SELECTION is missing")
  else
    sel=$(cat "$SELECTION")
    [[ $(head -n 1 <<<"$sel") == '[Extension]' ]] || problems+=("$SELECTION does not start with [Extension]")
    grep -qx 'Name=notes' <<<"$sel" || problems+=("$SELECTION has no Name=notes")
    grep -qx "Url=$URL/notes-1.0-x86-64.raw" <<<"$sel" || problems+=("$SELECTION has no Url=$URL/notes-1.0-x86-64.raw")
    grep -qxE 'SHA256=[0-9a-f]{64}' <<<"$sel" || problems+=("$SELECTION has no SHA256= with 64 hex digits")
  fi
  ign=$(journalctl -b -u ignition-files.service -o cat --no-pager 2>/dev/null)
  for f in "$TRANSFER" "$SELECTION"; do
    grep -q "\[finished\] writing file \"/sysroot$f\"" <<<"$ign" || problems+=("ignition-files.service's journal does not show it writing $f")
  done
  if ((${#problems[@]})); then fail ignition-wrote-selection "$(printf '%s; ' "${problems[@]}")"
  else pass ignition-wrote-selection; fi

  # ---- fetched-in-initrd --------------------------------------------------------------
  # Causes first (the network, the downloads), then what they left missing.
  problems=()
  grep -q 'a download needs the network: starting systemd-networkd' <<<"$ee_log" ||
    problems+=("earlyext never said it started the network")
  if ! grep -q 'network up after' <<<"$ee_log"; then
    nd_log=$(journalctl -b -u systemd-networkd.service -o cat --no-pager 2>/dev/null)
    configured=$(grep -o '[a-z0-9]*: Configuring with [^ ]*' <<<"$nd_log" | tr '\n' ' ')
    problems+=("the network never came up in the initrd: $(grep -E 'no network|network' <<<"$ee_log" | grep -v 'needs the network' | head -n 1); systemd-networkd configured ${configured:-no interface (no .network file matched the NIC)}")
  fi
  [[ -n $nd_start && $ee_start != '?' && $ee_end != '?' ]] && ((nd_start > ee_start && nd_start < ee_end)) ||
    problems+=("systemd-networkd did not start while earlyext.service ran (networkd at ${nd_start:-never}, earlyext ${ee_start}-${ee_end}us)")
  urls=$(fetched_urls | sort | tr '\n' ' ')
  [[ $urls == "$URL/notes-1.0-x86-64.raw $URL/versioned-1.10.0-x86-64.raw " ]] ||
    problems+=("state's fetched URLs are '${urls:-none}', want both images")
  grep -q '"fetch_problems":\[\]' <<<"$status_flat" ||
    problems+=("fetch_problems: $(grep -o '"fetch_problems":\[[^]]*\]' <<<"$status_flat" | head -c 400)")
  link=$(readlink /etc/extensions/versioned.raw 2>&1)
  if [[ ! -L /etc/extensions/versioned.raw ]]; then
    problems+=("/etc/extensions/versioned.raw is not a symlink (CurrentSymlink): /etc/extensions holds '$(ls -A /etc/extensions | tr '\n' ' ')'")
  elif [[ $(readlink -f /etc/extensions/versioned.raw) != "$WANT_TARGET" ]]; then
    problems+=("CurrentSymlink /etc/extensions/versioned.raw -> '$link', not the newest x86-64 version $WANT_TARGET")
  elif [[ $link == /* ]]; then
    problems+=("CurrentSymlink /etc/extensions/versioned.raw -> '$link' is absolute; systemd-sysupdate makes it relative")
  fi
  instances=$(cd /opt/extensions/versioned 2>/dev/null && ls -A | tr '\n' ' ')
  [[ $instances == "versioned-1.10.0-x86-64.raw " ]] ||
    problems+=("/opt/extensions/versioned holds '${instances:-nothing}', want only versioned-1.10.0-x86-64.raw")
  want_sha=$(sed -n 's/^SHA256=//p' "$SELECTION" 2>/dev/null)
  have_sha=$(sha256sum /etc/extensions/notes.raw 2>/dev/null | cut -c1-64)
  [[ -n $have_sha && $have_sha == "$want_sha" ]] ||
    problems+=("/etc/extensions/notes.raw has sha256 '${have_sha:-missing}', the selection says '$want_sha'")
  m=$(merged_problems); [[ -n $m ]] && problems+=("${m%; }")
  ee_err=$(grep -iE 'error|warning' <<<"$ee_log" | head -n 2 | tr '\n' ' ')
  # For boot 2: what this boot fetched (its record in /run is gone by then).
  mkdir -p /var/lib/earlyext-test && echo "${urls:-none}" >/var/lib/earlyext-test/boot1-fetched
  if ((${#problems[@]})); then fail fetched-in-initrd "$(printf '%s; ' "${problems[@]}")${ee_err:+ earlyext said: $ee_err}"
  else pass fetched-in-initrd; fi
else
  # ================================================================ boot 2
  # ---- second-boot-no-fetch ------------------------------------------------------------
  problems=()
  m=$(merged_problems); [[ -n $m ]] && problems+=("${m%; }")
  grep -q '"fetched":\[\]' <<<"$status_flat" || problems+=("state's fetched is not empty: $(fetched_field | head -c 400)")
  grep -q '"fetch_problems":\[\]' <<<"$status_flat" ||
    problems+=("fetch_problems: $(grep -o '"fetch_problems":\[[^]]*\]' <<<"$status_flat" | head -c 400)")
  said=$(grep -E 'needs the network|network up|fetched ' <<<"$ee_log" | head -n 3 | tr '\n' ' ')
  [[ -z $said ]] || problems+=("earlyext reached for the network: $said")
  if [[ -n $nd_start ]] && { [[ $sr_start == '?' ]] || ((nd_start < sr_start)); }; then
    problems+=("systemd-networkd was started in the initrd at ${nd_start}us (switch-root at ${sr_start}us): $(journalctl -b -u systemd-networkd.service -o cat --no-pager 2>/dev/null | head -n 3 | tr '\n' ' ')")
  fi
  addr=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $2, $4}' | tr '\n' ' ')
  [[ -z $addr ]] || problems+=("an interface has an IPv4 address: $addr")
  [[ -L /etc/extensions/versioned.raw && $(readlink -f /etc/extensions/versioned.raw) == "$WANT_TARGET" ]] ||
    problems+=("/etc/extensions/versioned.raw no longer points to $WANT_TARGET")
  boot1=$(cat /var/lib/earlyext-test/boot1-fetched 2>/dev/null)
  [[ $boot1 == "$URL/notes-1.0-x86-64.raw $URL/versioned-1.10.0-x86-64.raw " ]] || boot1_note="boot 1 fetched '${boot1:-?}', not both images, so this boot had work to do: "
  if ((${#problems[@]})); then fail second-boot-no-fetch "${boot1_note:-}$(printf '%s; ' "${problems[@]}")"
  else pass second-boot-no-fetch; fi
fi

tick done
finish
