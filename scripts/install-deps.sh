#!/usr/bin/env bash
# install-deps.sh [PACKAGE...]: installs the Debian 12 packages that are missing, idempotently.
# Without arguments: what earlyext needs to build and test. boot/install-deps.sh passes the boot
# harness's list.
set -euo pipefail
packages=("$@")
if ((${#packages[@]} == 0)); then
  packages=(
    pkg-config libmount-dev libblkid-dev libkmod-dev libcurl4-openssl-dev libssl-dev libcryptsetup-dev
    cryptsetup-bin fdisk
    kmod gpgv gpg openssl udev
    squashfs-tools erofs-utils btrfs-progs e2fsprogs xfsprogs util-linux
    systemd
    bc binutils python3
  )
  command -v swift >/dev/null || { echo "swift: not found; install the Swift 6 toolchain (swift.org) first" >&2; exit 1; }
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
