# Scenario "bench-verity" (tracker issue 5, the benchmark figure; not in the default boot-test
# set): in the booted guest, time earlyext verifying + activating + merging one signed 256 MiB
# DDI, against sha256sum of the whole image file. bench/verity-activate.sh boots this and prints
# the table; docs/verity.md ("Figures") explains what is measured.
#
# The images are on the extra disk /dev/vdc (ext4, label eebench, read-only; build-disk.sh):
# signed/bench.raw (GPT: usr, usr-verity, usr-verity-sig), plain/bench.raw (the same squashfs,
# no verity), earlyext-bench.crt (the CA), bench.manifest. Two throwaway roots on /run:
#   SIGNED  ROOT/var/lib/extensions = the disk's signed/, ROOT/etc/verity.d/ has the CA,
#           ROOT/etc/earlyext/earlyext.conf [Policy] Require=signed
#   PLAIN   ROOT/var/lib/extensions = the disk's plain/, no policy (Require=any)
# Each run, in this order, with the page cache dropped (echo 3 > drop_caches) before each timing:
#   signed  `earlyext --root SIGNED --offline merge`, timed around the command, in a private mount
#           namespace (unshare -m) with ROOT/usr bound onto itself (as bench/lib.sh does); then
#           `earlyext unmerge`; the namespace ends; the dm device and the loop devices must be
#           gone before the next timing, so every run really activates
#   plain   the same for the plain image (no dm-verity)
#   sha256  sha256sum of signed/bench.raw (checked against the manifest)
# The programs and libraries are re-read after each drop (in the initrd they are in RAM), so
# only the image comes cold from the disk; one signed merge with everything cold comes first,
# outside the medians. The last run also reads the whole payload through each merge (where
# dm-verity does hash every block), and once, at the end:
#   verify  `earlyext --root SIGNED verify signed/bench.raw`: every block in user space, then
#           activation (and teardown) and the release file
# Results: "EARLYEXT-FIGURE KEY VALUE" lines on the check channel (medians in microseconds, and
# each run's values); bench/verity-activate.sh reads them from checks.txt (or figures.txt).
# The one check, verity-bench, passes when every run worked and the signed image was activated
# through dm-verity each time.
# shellcheck shell=bash
. /etc/earlyext-test/checklib.sh

figure() { echo "EARLYEXT-FIGURE $*" >"$CHAN"; }
RUNS=$(sed -n 's/.*earlyext\.bench_runs=\([0-9][0-9]*\).*/\1/p' /proc/cmdline)
RUNS=${RUNS:-5}
B=/run/earlyext-bench
DISK=$B/disk SIGNED=$B/signed PLAIN=$B/plain
problems=()
problem() { problems+=("$*"); info "problem: $*"; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# usec T0 T1: microseconds between two $EPOCHREALTIME values.
usec() { local a=${1//[.,]/} b=${2//[.,]/}; echo $((10#$b - 10#$a)); }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "fail"; else print a[int((NR + 1) / 2)] }'; }
# dm_names: the names of every dm device, space-separated.
dm_names() { local d; for d in /sys/block/dm-*/dm/name; do [[ -e $d ]] && printf '%s ' "$(cat "$d")"; done; }
# bench_loops: loop devices whose backing file is on the bench disk.
bench_loops() { local d; for d in /sys/block/loop*/loop/backing_file; do [[ -e $d ]] && grep -q "$DISK/" "$d" && printf '%s ' "${d%/loop/backing_file}"; done; }
# settle: wait (at most 10 s) until no dm device and no loop device over the bench disk is left.
settle() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -z $(dm_names) && -z $(bench_loops) ]] && return 0
    sleep 0.1
  done
  problem "after $1: still there after 10 s: dm [$(dm_names)] loops [$(bench_loops)]"
  return 1
}
# jnum KEY FILE: the first number after "KEY": in FILE (state.json).
jnum() { grep -oE "\"$1\": ?[0-9.]+" "$2" 2>/dev/null | head -n 1 | sed -E 's/.*: ?//'; }
jstr() { grep -oE "\"$1\": ?\"([^\"\\\\]|\\\\.)*\"" "$2" 2>/dev/null | head -n 1 | sed -E "s/^\"$1\": ?\"//; s/\"$//"; }
ms_of() { [[ $1 == fail || -z $1 ]] && echo fail || awk -v u="$1" 'BEGIN { printf "%.0f", u * 1000 }'; }

tick start
info "kernel $(uname -r); $(nproc) CPU(s): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); cpu flags: $(grep -m1 -oE '\b(sha_ni|avx2|avx512f)\b' /proc/cpuinfo | sort -u | tr '\n' ' ')runs $RUNS"
mkdir -p "$DISK"
dev=/dev/disk/by-label/eebench; [[ -e $dev ]] || dev=/dev/vdc
if ! mount -o ro "$dev" "$DISK"; then
  fail verity-bench "cannot mount the bench disk ($dev): $(lsblk 2>&1 | tr '\n' ' ')"; finish
fi
mf() { sed -n "s/^$1=//p" "$DISK/bench.manifest" | head -n 1; }
info "manifest: $(grep -v '^#' "$DISK/bench.manifest" | tr '\n' ' ')"
for r in "$SIGNED" "$PLAIN"; do
  mkdir -p "$r/usr/lib" "$r/etc/extensions" "$r/var/lib/extensions" "$r/etc/verity.d" "$r/etc/earlyext"
  cp /usr/lib/os-release "$r/usr/lib/os-release"
  ln -sf ../usr/lib/os-release "$r/etc/os-release"
done
mount --bind "$DISK/signed" "$SIGNED/var/lib/extensions"
mount --bind "$DISK/plain" "$PLAIN/var/lib/extensions"
cp "$DISK/earlyext-bench.crt" "$SIGNED/etc/verity.d/earlyext-bench.crt"
printf '[Policy]\nRequire=signed\n' >"$SIGNED/etc/earlyext/earlyext.conf"
# The kernel modules, loaded once here (the initrd unit does the same before earlyext starts).
modprobe -a dm_mod dm_verity loop squashfs overlay || problem "modprobe dm_mod dm_verity loop squashfs overlay failed"
[[ -z $(dm_names) ]] || problem "dm devices before the first run: $(dm_names)"
# The programs and libraries the timed commands load (earlyext, what it links and what it loads
# with dlopen for dm-verity: libcryptsetup and its libraries; sha256sum). warm_programs re-reads
# them after each cache drop: in the initrd they sit in the initramfs, in RAM, so only the
# image's blocks should come cold from the disk.
lcs=$(ls /usr/lib/*-linux-gnu/libcryptsetup.so.12 2>/dev/null | head -n 1)
programs=$( { echo /usr/bin/earlyext; command -v sha256sum; echo "$lcs"
  ldd /usr/bin/earlyext "$lcs" "$(command -v sha256sum)" 2>/dev/null |
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | tr -d ':'; } | sort -u |
  while read -r f; do [[ -f $f ]] && readlink -f "$f"; done | sort -u)
info "warm after each drop: $(tr '\n' ' ' <<<"$programs")"
warm_programs() { cat $programs >/dev/null; }
enokey0=$(dmesg | grep -c 'verity: Root hash verification failed (-ENOKEY)' || true)
tick setup

# merge_once ROOT TAG [read] [cold]: one timed merge in a private mount namespace (ROOT/usr bound
# onto itself, as bench/lib.sh does), optionally a cold read of the whole payload through the
# merged /usr, then unmerge. The page cache is dropped before the merge (and the read), and the
# programs re-read unless "cold". Keeps the state record as $B/state-TAG.json. Prints
# "RC MERGE_US READ_RC READ_US UNMERGE_RC DM_NAMES" (the dm devices while merged; READ_US 0
# without "read").
merge_once() {
  local root=$1 sd=$B/state-$2 read=${3:-} cold=${4:-}
  rm -rf "$sd" "$sd.log" "$sd.json"
  sync; echo 3 >/proc/sys/vm/drop_caches
  [[ $cold == cold ]] || warm_programs
  unshare -m --propagation private bash -c '
    root=$1 sd=$2 read=$3
    mount --bind "$root/usr" "$root/usr"; mount --make-private "$root/usr"
    t0=$EPOCHREALTIME
    earlyext --root "$root" --state-dir "$sd" --offline merge >>"$sd.log" 2>&1; rc=$?
    t1=$EPOCHREALTIME
    cp "$sd/state.json" "$sd.json" 2>/dev/null
    dm=$(for d in /sys/block/dm-*/dm/name; do [[ -e $d ]] && printf "%s," "$(cat "$d")"; done)
    rrc=0 r0=$t1 r1=$t1
    if [[ $read == read ]]; then
      sync; echo 3 >/proc/sys/vm/drop_caches
      r0=$EPOCHREALTIME
      cat "$root/usr/share/bench/payload" >/dev/null 2>>"$sd.log"; rrc=$?
      r1=$EPOCHREALTIME
    fi
    earlyext --root "$root" --state-dir "$sd" unmerge >>"$sd.log" 2>&1; urc=$?
    echo "$rc ${t0//[.,]/} ${t1//[.,]/} $rrc ${r0//[.,]/} ${r1//[.,]/} $urc ${dm:-none}"
  ' _ "$root" "$sd" "$read" | {
    read -r rc t0 t1 rrc r0 r1 urc dm
    echo "$rc $((10#$t1 - 10#$t0)) $rrc $((10#$r1 - 10#$r0)) $urc $dm"
  }
}

s_merge=() s_inspect=() s_total=() p_merge=() p_inspect=() sha=()
s_read='' p_read='' ver='' cold=''
paths=() path_note=''

img=$DISK/signed/bench.raw
want_dm=earlyext-bench-$(mf ROOT_HASH | cut -c1-12)
# signed_run LABEL [read] [cold]: one merge of the signed DDI, checked; sets us, rus, inspect, total.
signed_run() {
  local rc rrc urc dm st=$B/state-signed.json by kind note
  read -r rc us rrc rus urc dm < <(merge_once "$SIGNED" signed "${2:-}" "${3:-}")
  inspect=$(jnum inspect "$st"); total=$(jnum total "$st")
  by=$(jstr signature_checked_by "$st"); kind=$(jstr kind "$st")
  note=$(grep -oE '"signature checked in user space[^"]*"' "$st" 2>/dev/null | head -n 1 | tr -d '"')
  info "$1 signed: merge rc=$rc ${us} us; state: kind=$kind checked_by=$by inspect=${inspect}ms total=${total}ms; dm while merged: $dm; read rc=$rrc ${rus} us; unmerge rc=$urc; note: ${note:-none}"
  settle "$1 signed" || return 1
  if [[ $rc == 0 && $kind == signed && $dm == *"$want_dm"* && $rrc == 0 && $urc == 0 && -n $inspect ]]; then
    paths+=("${by:-?}"); [[ -n $note ]] && path_note=${note#signature checked in user space: }
    return 0
  fi
  problem "$1 signed: merge rc=$rc kind='$kind' dm='$dm' (want $want_dm) read rc=$rrc unmerge rc=$urc: $(tail -n 5 "$B/state-signed.log" | tr '\n' ' ')"
  return 1
}
plain_run() {
  local rc rrc urc dm st=$B/state-plain.json
  read -r rc us rrc rus urc dm < <(merge_once "$PLAIN" plain "${2:-}")
  inspect=$(jnum inspect "$st")
  info "$1 plain: merge rc=$rc ${us} us; inspect=${inspect}ms; dm while merged: $dm; read rc=$rrc ${rus} us; unmerge rc=$urc"
  settle "$1 plain" || return 1
  grep -q 'merged 1 extension' "$B/state-plain.log" 2>/dev/null && [[ $rc == 0 && $dm == none && $rrc == 0 && $urc == 0 && -n $inspect ]] && return 0
  problem "$1 plain: merge rc=$rc dm='$dm' read rc=$rrc unmerge rc=$urc: $(tail -n 5 "$B/state-plain.log" | tr '\n' ' ')"
  return 1
}

# Once first, everything cold (programs too): not counted in the medians.
signed_run "cold" "" cold && cold=$us
for ((i = 1; i <= RUNS; i++)); do
  # The last run also reads the whole payload through each merge.
  rd=''; ((i == RUNS)) && rd=read
  if signed_run "run $i" "$rd"; then
    s_merge+=("$us"); s_inspect+=("$inspect"); s_total+=("$total"); [[ $rd == read ]] && s_read=$rus
  fi
  if plain_run "run $i" "$rd"; then
    p_merge+=("$us"); p_inspect+=("$inspect"); [[ $rd == read ]] && p_read=$rus
  fi
  # sha256sum of the whole image file
  sync; echo 3 >/proc/sys/vm/drop_caches; warm_programs
  t0=$EPOCHREALTIME; sum=$(sha256sum "$img" | cut -c1-64); t1=$EPOCHREALTIME
  info "run $i sha256sum: $(usec "$t0" "$t1") us"
  if [[ $sum == "$(mf SIGNED_SHA256)" ]]; then sha+=("$(usec "$t0" "$t1")")
  else problem "run $i: sha256sum of $img is '$sum', the manifest says $(mf SIGNED_SHA256)"; fi
  tick "run $i"
done
# earlyext verify, once: every block in user space, then activation and teardown.
sync; echo 3 >/proc/sys/vm/drop_caches; warm_programs
t0=$EPOCHREALTIME; out=$(earlyext --root "$SIGNED" verify "$img" 2>&1); vrc=$?; t1=$EPOCHREALTIME
info "earlyext verify: rc=$vrc $(usec "$t0" "$t1") us: $(head -c 400 <<<"$out" | tr '\n' ' ')"
if ((vrc == 0)); then ver=$(usec "$t0" "$t1"); else problem "earlyext verify exited $vrc: ${out:0:300}"; fi
settle verify
enokey=$(( $(dmesg | grep -c 'verity: Root hash verification failed (-ENOKEY)' || true) - enokey0 ))
info "kernel: $(dmesg | grep -E 'device-mapper|verity' | tail -n 6 | tr '\n' '|')"

med() { printf '%s\n' "$@" | grep -E '^[0-9.]+$' | median; }
figure runs "$RUNS"
figure image_bytes "$(stat -c %s "$img")"
figure payload_bytes "$(mf PAYLOAD_BYTES)"
figure kernel "$(uname -r)"
figure cpus "$(nproc)"
figure signed_merge_us "$(med "${s_merge[@]}")"
figure signed_merge_runs_us "${s_merge[*]}"
figure signed_inspect_us "$(ms_of "$(med "${s_inspect[@]}")")"
figure signed_total_us "$(ms_of "$(med "${s_total[@]}")")"
figure signed_merge_cold_us "${cold:-fail}"
figure plain_merge_us "$(med "${p_merge[@]}")"
figure plain_merge_runs_us "${p_merge[*]}"
figure plain_inspect_us "$(ms_of "$(med "${p_inspect[@]}")")"
figure sha256sum_us "$(med "${sha[@]}")"
figure sha256sum_runs_us "${sha[*]}"
figure signed_read_us "${s_read:-fail}"
figure plain_read_us "${p_read:-fail}"
figure verify_us "${ver:-fail}"
figure activation_path "$(printf '%s\n' "${paths[@]}" | sort | uniq -c | sed 's/^ *\([0-9]*\) /\1x /' | tr '\n' ';' | sed 's/;$//')"
figure activation_note "${path_note:-none}"
figure kernel_enokey_refusals "$enokey"
tick figures

((${#s_merge[@]} == RUNS && ${#p_merge[@]} == RUNS && ${#sha[@]} == RUNS)) ||
  problem "of $RUNS runs, ${#s_merge[@]} signed merges, ${#p_merge[@]} plain merges and ${#sha[@]} sha256sums worked"
if ((${#problems[@]})); then
  fail verity-bench "$(printf '%s; ' "${problems[@]}")"
else
  pass verity-bench
fi
finish
