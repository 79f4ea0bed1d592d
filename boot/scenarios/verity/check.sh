# Scenario "verity" (tracker issue 5): checks run in the booted system. Ignition wrote the
# policy (/etc/earlyext/earlyext.conf: [Policy] Require=signed), the test CA into
# /etc/verity.d/earlyext-test.crt, three images into /etc/extensions/ and verity.manifest
# (what the host built: root hashes, signer, the flipped byte; build-images.sh).
# The host kernel has no device-mapper: this is the only place dm-verity activation is proven.
# shellcheck shell=bash
. /etc/earlyext-test/checklib.sh

MANIFEST=/etc/earlyext-test/verity.manifest
META=/usr/.systemd-sysext/extensions
# mf KEY: a value from verity.manifest.
mf() { sed -n "s/^$1=//p" "$MANIFEST" 2>/dev/null | head -n 1; }

# json_items KEY < JSON: each element of the top-level array KEY, one per line (objects flattened).
json_items() {
  awk -v key="$1" 'BEGIN { RS = "\001" } {
    s = $0; n = length(s); depth = 0; instr = 0; esc = 0; str = ""; lastkey = ""; inarr = 0; col = 0; item = ""
    for (i = 1; i <= n; i++) {
      c = substr(s, i, 1)
      if (c == "\n" || c == "\t") c = " "
      if (instr) {
        if (col) item = item c
        if (esc) { esc = 0; str = str c; continue }
        if (c == "\\") { esc = 1; continue }
        if (c == "\"") { instr = 0; if (depth == 1) lastkey = str; continue }
        str = str c; continue
      }
      if (c == "\"") { instr = 1; str = ""; if (col) item = item c; continue }
      if (c == "{" || c == "[") {
        depth++
        if (c == "[" && depth == 2 && lastkey == key) { inarr = 1; continue }
        if (inarr && depth == 3) { col = 1; item = "" }
        if (col) item = item c
        continue
      }
      if (c == "}" || c == "]") {
        if (col) item = item c
        if (col && depth == 3) { gsub(/  +/, " ", item); print item; col = 0 }
        depth--
        if (inarr && depth == 1) inarr = 0
        continue
      }
      if (col) item = item c
    }
  }'
}
# item_for NAME < ITEMS: the element (a line of json_items) whose "name" is NAME.
item_for() { grep -E "^\{ ?\"name\": ?\"$1\"" | head -n 1; }
# jstr FIELD: the first string value of FIELD in stdin (one flattened object).
jstr() { grep -oE "\"$1\": ?\"([^\"\\\\]|\\\\.)*\"" | head -n 1 | sed -E "s/^\"$1\": ?\"//; s/\"$//"; }

tick start
udevadm settle --timeout=30 || true
ee_log=$(journalctl -b -u earlyext.service -o short-monotonic --no-pager 2>&1)
printf '%s\n' "$ee_log" | tail -n 40 | sed 's/^/earlyext.service: /' | while IFS= read -r l; do info "$l"; done
klog=$(journalctl -b -k -o short-monotonic --no-pager 2>/dev/null | grep -iE 'verity|device-mapper|squashfs|dm-[0-9]' | grep -v 'Modules linked in' | head -n 40)
# What dm-verity itself said (a refused signature, a corrupted block), for the failure reasons.
kverity=$(journalctl -b -k -o cat --no-pager 2>/dev/null | grep -E 'verity: .*(fail|corrupt|error)' | head -n 4 | tr '\n' ' ')
printf '%s\n' "$klog" | sed 's/^/kernel: /' | while IFS= read -r l; do info "$l"; done
status_json=$(earlyext status --json 2>&1); status_rc=$?
info "earlyext status --json (rc=$status_rc): $(head -c 6000 <<<"$status_json" | tr '\n' ' ' | sed 's/  */ /g')"
info "earlyext status: $(earlyext status 2>&1 | tr '\n' '|')"
ext_items=$(json_items extensions <<<"$status_json")
skip_items=$(json_items skipped <<<"$status_json")
timings=$(tr '\n' ' ' <<<"$status_json" | grep -oE '"timings_ms": ?\{[^}]*\}' | sed 's/  */ /g')
read -r ee_start ee_end ee_result < <(unit_times earlyext.service)
read -r sr_start _ _ < <(unit_times initrd-switch-root.service)
ee_ms=?; [[ $ee_start != '?' && $ee_end != '?' ]] && ee_ms=$(((ee_end - ee_start) / 1000))
info "earlyext.service in the initrd: start=${ee_start}us end=${ee_end}us (${ee_ms} ms) result=$ee_result; initrd-switch-root start=${sr_start}us"
info "state timings_ms: ${timings:-none}"
# The kernel's side of activation: its first and last dm-verity table load, and device-mapper's start.
kact=$(journalctl -b -k -o short-monotonic --no-pager 2>/dev/null | awk -F'[][]' '
  /device-mapper: ioctl: .*initialised/ { init = $2 + 0 }
  /device-mapper: verity: sha256 using/ { if (first == "") first = $2 + 0; last = $2 + 0; n++ }
  END { if (n) printf "device-mapper up at %.3f s; %d verity table loads from %.3f s to %.3f s (%.0f ms)", init, n, first, last, (last - first) * 1000 }')
info "activation in the kernel log: ${kact:-no dm-verity table load}"
merged=$(cat "$META" 2>/dev/null | tr '\n' ' ')
info "$META: ${merged:-missing}; manifest: $(grep -v '^#' "$MANIFEST" 2>/dev/null | tr '\n' ' ')"
# dm devices: "dm-N NAME" per line.
dm_list() { local d; for d in /sys/block/dm-*; do [[ -e $d/dm/name ]] && echo "${d##*/} $(cat "$d/dm/name")"; done; }
dms=$(dm_list)
info "dm devices: $(tr '\n' ';' <<<"${dms:-none}"); dmsetup ls: $(dmsetup ls 2>&1 | tr '\n' ';')"
tick gathered
# The boot went on: earlyext finished in the initrd, before switch-root.
boot_problems=()
[[ $ee_result == done ]] || boot_problems+=("earlyext.service in the initrd: $ee_result")
[[ $sr_start != '?' && $ee_end != '?' ]] && ((ee_end < sr_start)) ||
  boot_problems+=("earlyext.service did not finish (at ${ee_end}us) before initrd-switch-root (at ${sr_start}us)")
ee_err=$(grep -iE 'error|warning|refus|skip|cannot' <<<"$ee_log" | sed -E 's/^\[ *[0-9.]+\] [^:]+: //' | head -n 4 | tr '\n' ' ')
[[ -n $kverity ]] && ee_err+="; the kernel said: $kverity"

# ---- signed-ddi-merged ---------------------------------------------------------------
problems=()
root_hash=$(mf SIGNEDEXT_ROOT_HASH)
[[ $root_hash =~ ^[0-9a-f]{64}$ ]] || problems+=("$MANIFEST has no SIGNEDEXT_ROOT_HASH")
((status_rc == 0)) || problems+=("earlyext status --json exited $status_rc")
grep -qx signedext "$META" 2>/dev/null || problems+=("$META does not list signedext (${merged:-missing})")
for f in /usr/lib/extension-release.d/extension-release.signedext /usr/share/earlyext-signedext/README.txt; do
  [[ -f $f ]] || problems+=("$f is not in the booted /usr")
done
tool=$(earlyext-signedext 2>&1)
[[ $tool == "earlyext-signedext: running from the signedext image" ]] || problems+=("earlyext-signedext said '${tool:0:120}'")
item=$(item_for signedext <<<"$ext_items")
if [[ -z $item ]]; then
  problems+=("earlyext status --json does not list signedext among the merged extensions")
else
  kind=$(jstr kind <<<"$item"); rh=$(jstr root_hash <<<"$item"); signer=$(jstr signer <<<"$item")
  by=$(jstr signature_checked_by <<<"$item"); dmname=$(jstr device_mapper <<<"$item")
  info "signedext: kind=$kind root_hash=$rh signer=$signer signature_checked_by=$by device_mapper=$dmname verified=$(jstr verified <<<"$item")"
  [[ $kind == signed ]] || problems+=("signedext's verification kind is '$kind', want signed")
  [[ -n $root_hash && $rh == "$root_hash" ]] || problems+=("signedext's root hash is '$rh', the image's is '$root_hash'")
  want_cn=$(mf SIGNER_SUBJECT); want_cn=${want_cn#CN=}
  [[ -n $signer && $signer == *"$want_cn"* ]] || problems+=("signedext's signer is '$signer', want the test signer '$want_cn'")
  [[ $by == kernel || $by == userspace ]] || problems+=("signedext's signature_checked_by is '$by'")
  [[ $dmname =~ ^earlyext-signedext-${root_hash:0:12}(-[0-9]+)?$ ]] ||
    problems+=("signedext's device_mapper is '$dmname', want earlyext-signedext-${root_hash:0:12}")
fi
dm=$(awk -v n="${dmname:-earlyext-signedext-${root_hash:0:12}}" '$2 == n { print $1 }' <<<"$dms" | head -n 1)
if [[ -z $dm ]]; then
  problems+=("no dm device named ${dmname:-earlyext-signedext-${root_hash:0:12}} in /sys/block/dm-*/dm/name (have: $(tr '\n' ';' <<<"${dms:-none}"))")
else
  ro=$(cat "/sys/block/$dm/ro"); sus=$(cat "/sys/block/$dm/dm/suspended")
  [[ $ro == 1 && $sus == 0 ]] || problems+=("$dm: ro=$ro suspended=$sus, want read-only and live")
  if command -v dmsetup >/dev/null; then
    table=$(dmsetup table "$(cat "/sys/block/$dm/dm/name")" 2>&1)
    info "dmsetup table $dm: $table"
    [[ $(awk '{print $3}' <<<"$table") == verity ]] || problems+=("$dm's table is not a verity target: $table")
    grep -qw "$root_hash" <<<"$table" || problems+=("$dm's verity table does not carry the root hash $root_hash: $table")
  fi
  # The data and hash devices: loop devices over the DDI's partitions.
  slaves=$(for s in /sys/block/"$dm"/slaves/*; do
    [[ -e $s/loop/backing_file ]] && echo "${s##*/} $(cat "$s/loop/offset") $(cat "$s/loop/backing_file")"; done)
  info "$dm slaves: $(tr '\n' ';' <<<"${slaves:-none}")"
  grep -qE "^loop[0-9]+ $(mf SIGNEDEXT_DATA_OFFSET) .*signedext\.raw$" <<<"$slaves" ||
    problems+=("$dm has no loop device at the data partition (offset $(mf SIGNEDEXT_DATA_OFFSET)) of signedext.raw: $(tr '\n' ';' <<<"${slaves:-none}")")
  # Read a file through the overlay and see the reads arrive at the dm-verity device.
  sync; echo 3 >/proc/sys/vm/drop_caches
  before=$(awk '{print $3}' "/sys/block/$dm/stat")
  have=$(sha256sum /usr/share/earlyext-signedext/payload.bin 2>&1 | cut -c1-64)
  after=$(awk '{print $3}' "/sys/block/$dm/stat")
  info "$dm sectors read: $before before reading payload.bin, $after after"
  [[ $have == "$(mf SIGNEDEXT_PAYLOAD_SHA256)" ]] ||
    problems+=("/usr/share/earlyext-signedext/payload.bin has sha256 '$have', the image's is '$(mf SIGNEDEXT_PAYLOAD_SHA256)'")
  ((after - before >= 512)) || problems+=("reading payload.bin (256 KiB) read $((after - before)) sectors from $dm: not through dm-verity")
fi
if ((${#problems[@]} + ${#boot_problems[@]})); then
  fail signed-ddi-merged "$(printf '%s; ' "${boot_problems[@]}" "${problems[@]}")${ee_err:+ earlyext said: $ee_err}"
else
  pass signed-ddi-merged
fi
tick signed-ddi-merged

# ---- tampered-refused ------------------------------------------------------------------
problems=()
grep -qx tampered "$META" 2>/dev/null && problems+=("$META lists tampered")
for f in /usr/lib/extension-release.d/extension-release.tampered /usr/share/earlyext-tampered /usr/bin/earlyext-tampered; do
  [[ -e $f ]] && problems+=("$f is in the booted /usr")
done
[[ -n $(item_for tampered <<<"$ext_items") ]] && problems+=("earlyext status lists tampered as merged")
item=$(item_for tampered <<<"$skip_items")
reason=$(jstr reason <<<"$item")
info "tampered: skipped with reason '$reason'"
[[ -n $item && -n $reason ]] || problems+=("earlyext status does not report tampered as skipped with a reason (skipped: $(tr '\n' ' ' <<<"${skip_items:-none}" | head -c 400))")
# It was refused because dm-verity caught the flipped byte, not for some other reason.
block=$(mf TAMPERED_DATA_BLOCK)
corrupt=$(journalctl -b -k -o cat --no-pager 2>/dev/null | grep -E "verity.*data block $block is corrupted" | head -n 1)
info "kernel on the tampered block $block: ${corrupt:-nothing}"
[[ -n $block && -n $corrupt ]] || problems+=("the kernel never reported data block ${block:-?} corrupted (dm-verity did not catch the flipped byte; $(mf TAMPERED_WHAT))")
# A refusal after activation leaves no device behind (docs/verity.md, activation step 5).
left=$(grep -E ' earlyext-tampered-' <<<"$dms" | tr '\n' ';')
[[ -z $left ]] || problems+=("the tampered image's dm device is still there after the refusal: $left")
grep -qx signedext "$META" 2>/dev/null || problems+=("the other extension (signedext) is not merged either")
if ((${#problems[@]} + ${#boot_problems[@]})); then
  fail tampered-refused "$(printf '%s; ' "${boot_problems[@]}" "${problems[@]}")${ee_err:+ earlyext said: $ee_err}"
else
  pass tampered-refused
fi
tick tampered-refused

# ---- unsigned-refused-under-signed-policy --------------------------------------------------
problems=()
policy=$(cat /etc/earlyext/earlyext.conf 2>/dev/null | tr '\n' ' ')
grep -qx 'Require=signed' /etc/earlyext/earlyext.conf 2>/dev/null || problems+=("/etc/earlyext/earlyext.conf is '$policy', without Require=signed")
grep -qx unsigned "$META" 2>/dev/null && problems+=("$META lists unsigned")
for f in /usr/lib/extension-release.d/extension-release.unsigned /usr/share/earlyext-unsigned /usr/bin/earlyext-unsigned; do
  [[ -e $f ]] && problems+=("$f is in the booted /usr")
done
[[ -n $(item_for unsigned <<<"$ext_items") ]] && problems+=("earlyext status lists unsigned as merged")
item=$(item_for unsigned <<<"$skip_items")
reason=$(jstr reason <<<"$item")
info "unsigned: skipped with reason '$reason'"
if [[ -z $item || -z $reason ]]; then
  problems+=("earlyext status does not report unsigned as skipped with a reason")
elif ! grep -qiE 'signature|signed|verity' <<<"$reason"; then
  problems+=("unsigned's reason does not name the missing signature or verity data: '$reason'")
fi
left=$(grep -E ' earlyext-unsigned-' <<<"$dms" | tr '\n' ';')
[[ -z $left ]] || problems+=("a dm device for unsigned exists: $left")
if ((${#problems[@]} + ${#boot_problems[@]})); then
  fail unsigned-refused-under-signed-policy "$(printf '%s; ' "${boot_problems[@]}" "${problems[@]}")${ee_err:+ earlyext said: $ee_err}"
else
  pass unsigned-refused-under-signed-policy
fi

tick done
finish
