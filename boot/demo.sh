#!/usr/bin/env bash
# demo.sh: builds what is missing (cached after the first run), boots a VM whose
# initrd merges three sample extensions placed by Ignition, and prints from inside
# the guest `earlyext status` and how long earlyext took in the initrd. The VM
# then powers itself off. Exits non-zero if the demo's own check fails.
source "$(dirname "$0")/lib.sh"
need_root
t0=$SECONDS
log "demo: step 1/3: packages"
bash "$EE_REPO/boot/install-deps.sh"
log "demo: step 2/3: images (first run: a few minutes; later runs: seconds)"
bash "$EE_REPO/boot/images.sh" "$EE_OUT/images.env"
log "demo: step 3/3: booting the demo VM (TCG emulation, about a minute)"
results=$(bash "$EE_REPO/boot/run-scenario.sh" demo --progress)
echo
echo "================ from inside the guest ================"
sed -n 's/^EARLYEXT-REPORT \{0,1\}//p' "$EE_OUT/demo/checks.txt"
echo "======================================================="
echo "$results"
read -r _ failed boot_s <"$EE_OUT/demo/result"
log "demo: done in $((SECONDS - t0)) s (the VM ran ${boot_s} s); logs in ${EE_OUT#"$EE_REPO"/}/demo/"
((failed == 0))
