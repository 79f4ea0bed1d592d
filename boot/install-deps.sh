#!/usr/bin/env bash
# Installs the Debian 12 packages the boot harness needs, if any is missing. Idempotent.
set -euo pipefail
exec bash "$(dirname "$0")/../scripts/install-deps.sh" \
  qemu-system-x86 qemu-utils \
  dracut-core dracut-network ignition \
  mmdebstrap debian-archive-keyring \
  socat python3 bc \
  erofs-utils squashfs-tools e2fsprogs \
  kmod cpio zstd curl binutils \
  systemd udev \
  cryptsetup-bin fdisk openssl
