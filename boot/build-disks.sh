#!/usr/bin/env bash
# build-disks.sh ROOTFS_DIR KERNEL_DIR
# Makes the guest's two disks from the cached mmdebstrap tree (cheap, no mmdebstrap):
#   root.ext4  ext4 root: /etc, /var, ..., bin/sbin/lib symlinks into usr, empty /usr
#   usr.erofs  read-only /usr: the tree's usr + the kernel's modules + the current
#              earlyext binary as /usr/bin/earlyext (so `earlyext status` works after boot)
# Prints two lines: the root dir and the usr dir in the cache.
# With DROP_MODULES (kernel module names, e.g. "dummy"), builds only a variant of
# usr.erofs without those modules (depmod run again, so the base's indexes don't
# know them either) and prints its dir: the modules scenario ships the module in
# an extension instead.
source "$(dirname "$0")/lib.sh"
need_root
rootfs=$1 kernel=$2 drop=${3:-}
kver=$(cat "$kernel/kver")

# build_usr CACHE_NAME DROP_MODULES -> prints the cache dir holding usr.erofs
build_usr() {
  local name=$1 drop=$2 ukey uout tmp stage lib m missing
  ukey=$(hash_inputs "$0" "$EE_REPO/boot/lib.sh" -- "$(basename "$rootfs")" "$(basename "$kernel")" "$(binary_hash)" $drop)
  uout=$(cache_dir "$name" "$ukey")
  if ! cache_ready "$uout"; then
    log "disks: usr.erofs (with $(basename "$EE_BINARY") $(binary_hash))${drop:+ without the modules $drop}"
    tmp=$(cache_begin "$uout")
    stage=$tmp/usr
    cp -a "$rootfs/tree/usr" "$stage"
    mkdir -p "$stage/lib/modules"
    cp -a "$kernel/lib/modules/$kver" "$stage/lib/modules/"
    if [[ -n $drop ]]; then
      for m in $drop; do
        [[ -n $(find "$stage/lib/modules/$kver" -name "$m.ko*") ]] || die "disks: no module $m in $kver"
        find "$stage/lib/modules/$kver" -name "$m.ko*" -delete
      done
      depmod -b "$stage" "$kver"
    fi
    install -m 0755 "$EE_BINARY" "$stage/bin/earlyext"
    # Every library the binary links must be in the guest, or `earlyext status`
    # can't run after boot: they come from boot/rootfs.packages.
    missing=()
    # libcurl and libcryptsetup are loaded with dlopen() on first use: not in NEEDED.
    for lib in $(readelf -d "$EE_BINARY" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p') libcurl.so.4 libcryptsetup.so.12; do
      [[ -e $stage/lib/x86_64-linux-gnu/$lib || -e $stage/lib64/$lib || -e $stage/lib/$lib ]] || missing+=("$lib")
    done
    ((${#missing[@]} == 0)) ||
      die "the guest lacks ${missing[*]} that earlyext links: add their packages to boot/rootfs.packages"
    mkfs.erofs --quiet -zlz4 -T0 -U 6c8c3b2e-5b0f-4f5e-9f57-0ea1e1e1e002 "$tmp/usr.erofs" "$stage" >&2
    rm -rf "$stage"
    cache_commit "$tmp" "$uout"
  fi
  log "disks: ready ($(du -h --apparent-size "$uout/usr.erofs" | cut -f1) usr.erofs${drop:+ without $drop})"
  printf '%s\n' "$uout"
}

if [[ -n $drop ]]; then
  build_usr "usrdisk-no-${drop// /-}" "$drop"
  exit 0
fi

rkey=$(hash_inputs "$0" "$EE_REPO/boot/lib.sh" -- "$(basename "$rootfs")")
rout=$(cache_dir rootdisk "$rkey")
if ! cache_ready "$rout"; then
  log "disks: root.ext4"
  tmp=$(cache_begin "$rout")
  stage=$tmp/stage
  mkdir "$stage"
  tar -C "$rootfs/tree" --exclude=./usr -cf - . | tar -C "$stage" -xpf -
  mkdir -m 0755 "$stage/usr"
  # ext4 with the tree as its content; the file is sparse, so 1 GiB costs what is used.
  mkfs.ext4 -q -F -L root -U 6c8c3b2e-5b0f-4f5e-9f57-0ea1e1e1e001 -E root_owner=0:0 \
    -d "$stage" "$tmp/root.ext4" 1G >&2
  rm -rf "$stage"
  cache_commit "$tmp" "$rout"
fi

uout=$(build_usr usrdisk "")
printf '%s\n%s\n' "$rout" "$uout"
