#!/usr/bin/env bash
# bench/verity-activate.sh: the time to verify and activate a signed 256 MiB DDI, against
# sha256sum of the whole image, measured where dm-verity exists: in the QEMU guest of the boot
# suite (Linux 6.12, TCG; the host has no device-mapper). Boots boot/scenarios/bench-verity
# (not part of `make boot-test`), whose check.sh times, RUNS (5) times each, cold page cache:
#   - earlyext merge of the signed DDI (GPT, PKCS#7 signature, dm-verity activation, squashfs
#     mount through dm-verity, release file, overlay, state record), then unmerge;
#   - earlyext merge of the same files as a plain squashfs (no dm-verity);
#   - sha256sum of the image file;
# and once each: the signed merge with the programs cold too, earlyext verify of the image (every
# block in user space, then activation), a read of the whole payload through each merge
# (dm-verity checks blocks when they are read). One boot: about 3.5 minutes warm under TCG.
# Prints a Markdown table of the medians (ms) and the ratios; CSV=FILE also writes
# "what,median_us,runs"; REUSE=1 prints the table of the last boot again without booting.
# Needs root and the release build (make release); builds or reuses the
# boot images (~/.cache/earlyext, like make boot-test). Logs: out/boot/bench-verity/.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
[ "$(id -u)" = 0 ] || { echo "bench: $0 needs root (it builds and boots the VM images)" >&2; exit 1; }
[ -x .build/release/earlyext ] || { echo "bench: .build/release/earlyext missing (make release)" >&2; exit 1; }
out=${EARLYEXT_OUT:-$PWD/out/boot}/bench-verity
t0=$SECONDS
if [ "${REUSE:-0}" = 1 ] && [ -s "$out/figures.txt" ]; then
  # REUSE=1: no boot, only the table again from the last run's figures.
  echo "bench: REUSE=1: the figures of the last boot ($(stat -c %y "$out/figures.txt" | cut -d. -f1))" >&2
  t1=$SECONDS
else
  bash boot/install-deps.sh >&2
  bash boot/images.sh >&2
  t1=$SECONDS
  BENCH_RUNS=$RUNS bash boot/run-scenario.sh bench-verity >&2
fi
t2=$SECONDS
read -r _ failed _ <"$out/result"
fig() { sed -n "s/^$1 //p" "$out/figures.txt" 2>/dev/null | head -n 1; }
if [ "$failed" != 0 ] || [ -z "$(fig signed_merge_us)" ] || [ "$(fig signed_merge_us)" = fail ]; then
  echo "bench: the bench-verity boot failed; see $out/checks.txt and serial.log" >&2
  exit 1
fi

ms() { case $1 in ''|fail) echo fail ;; *) awk -v u="$1" 'BEGIN { printf "%.0f", u / 1000 }' ;; esac; }
ratio() { case "$1$2" in *fail*|'') echo - ;; *) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' ;; esac; }
rate() { case $1 in ''|fail) echo - ;; *) awk -v us="$1" -v b="$2" 'BEGIN { printf "%.0f MiB/s", b / 1048576 / (us / 1e6) }' ;; esac; }
sm=$(fig signed_merge_us) si=$(fig signed_inspect_us) sc=$(fig signed_merge_cold_us) pm=$(fig plain_merge_us)
pi=$(fig plain_inspect_us) sh=$(fig sha256sum_us) ve=$(fig verify_us) sr=$(fig signed_read_us) pr=$(fig plain_read_us)
bytes=$(fig image_bytes) payload=$(fig payload_bytes) runs=$(fig runs)
echo "## verify + activate in QEMU/TCG: signed $((payload / 1048576)) MiB DDI ($((bytes / 1048576)) MiB image, cold page cache, medians of $runs)"
echo
echo "Guest: Linux $(fig kernel), $(fig cpus) vCPU, QEMU TCG (no KVM here: every instruction is emulated, so the times"
echo "are many times native ones; compare the ratios). The page cache is dropped before each timing, then the programs"
echo "and libraries are read back (in the initrd they are in RAM): the image comes cold from the virtio disk."
echo "bench/verity-activate.sh, boot/scenarios/bench-verity (docs/verity.md, \"Figures\")."
echo
echo "| what | ms | / sha256sum |"
echo "|---|---|---|"
echo "| **earlyext merge of the signed DDI**: GPT, signature, dm-verity activation, squashfs mount, merge (the whole command) | **$(ms "$sm")** | **$(ratio "$sm" "$sh")** |"
echo "| … of which the inspect stage (GPT, signature, activation, mount, release file) | $(ms "$si") | $(ratio "$si" "$sh") |"
echo "| earlyext merge of the same files as a plain squashfs (no dm-verity) | $(ms "$pm") | $(ratio "$pm" "$sh") |"
echo "| … of which the inspect stage | $(ms "$pi") | $(ratio "$pi" "$sh") |"
echo "| **sha256sum of the image file** | **$(ms "$sh")** | 1.00 |"
echo "| earlyext merge of the signed DDI, programs cold too (one run, first) | $(ms "$sc") | $(ratio "$sc" "$sh") |"
echo "| earlyext verify: every block in user space, then activation (one run) | $(ms "$ve") | $(ratio "$ve" "$sh") |"
echo "| reading the whole payload through the signed merge: dm-verity hashes every block (one run) | $(ms "$sr") ($(rate "$sr" "$payload")) | $(ratio "$sr" "$sh") |"
echo "| reading it through the plain merge (one run) | $(ms "$pr") ($(rate "$pr" "$payload")) | $(ratio "$pr" "$sh") |"
echo
echo "Verify + activate + merge of the signed image took $(ratio "$sm" "$sh")× the time of sha256sum of the image;"
echo "dm-verity added $(ms $((sm - pm))) ms to the merge of the same files."
echo "Activation path (signature_checked_by in state.json, every signed merge, the cold one too): $(fig activation_path)."
echo "The kernel refused the signed table load with ENOKEY $(fig kernel_enokey_refusals) times in that boot (once per signed merge,"
echo "twice in earlyext verify: its keyrings do not hold the test CA), so earlyext checked the PKCS#7 signature against ROOT/etc/verity.d and activated with the root hash"
echo "(earlyext's note: \"$(fig activation_note)\")."
[ "${REUSE:-0}" = 1 ] || echo "This bench took $((t2 - t0)) s (images $((t1 - t0)) s, boot and runs $((t2 - t1)) s)."
if [ -n "${CSV:-}" ]; then
  {
    echo "what,median_us,runs"
    for k in signed_merge signed_inspect plain_merge plain_inspect sha256sum; do
      echo "$k,$(fig ${k}_us),$runs"
    done
    for k in signed_merge_cold verify signed_read plain_read; do echo "$k,$(fig ${k}_us),1"; done
  } >"$CSV"
fi
