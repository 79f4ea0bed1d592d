#!/usr/bin/env bash
# Installs the Debian 12 packages the boot harness needs, if any is missing. Idempotent.
set -euo pipefail
packages=(
  qemu-system-x86 qemu-utils
  dracut-core dracut-network ignition
  mmdebstrap debian-archive-keyring
  socat python3 bc
  erofs-utils squashfs-tools e2fsprogs
  kmod cpio zstd curl binutils
  systemd udev
  # verity scenario: its images (boot/scenarios/verity/build-images.sh)
  cryptsetup-bin fdisk openssl
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "boot: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
