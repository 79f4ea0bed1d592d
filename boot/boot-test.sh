#!/usr/bin/env bash
# boot-test.sh [SCENARIO...]: builds the images (cached) and boots each scenario
# (default: every boot/scenarios/*/ whose scenario.conf lists CHECKS, is not
# the demo and does not say DEFAULT=no, as bench-verity does). Prints PASS/FAIL
# per check, then "N passed, M failed" alone on a line. Exits non-zero on any
# failure or timeout.
source "$(dirname "$0")/lib.sh"
need_root
t0=$SECONDS
bash "$EE_REPO/boot/install-deps.sh"
bash "$EE_REPO/boot/images.sh" "$EE_OUT/images.env"
scenarios=("$@")
if ((${#scenarios[@]} == 0)); then
  for d in "$EE_REPO"/boot/scenarios/*/; do
    s=$(basename "$d")
    [[ -f $d/scenario.conf && $s != demo ]] && grep -q '^CHECKS=' "$d/scenario.conf" &&
      ! grep -q '^DEFAULT=no' "$d/scenario.conf" && scenarios+=("$s")
  done
fi
passed=0 failed=0
for s in "${scenarios[@]}"; do
  bash "$EE_REPO/boot/run-scenario.sh" "$s"
  read -r p f _ <"$EE_OUT/$s/result" || { p=0; f=1; echo "FAIL $s/harness: no result"; }
  passed=$((passed + p)); failed=$((failed + f))
done
log "boot-test: $((SECONDS - t0)) s in all"
echo "$passed passed, $failed failed"
((failed == 0))
