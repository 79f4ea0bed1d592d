#!/usr/bin/env bash
# build-extensions.sh [KERNEL_DIR]
# Packs every boot/extensions/DIR/ tree into NAME-VERSION-ARCH.raw (named like
# sysext-bakery's images), squashfs built with -all-root or erofs, as build.conf
# says. The images are reproducible (fixed times, owners, modes and UUIDs), so the
# sha256 in the scenarios' Ignition configs stays valid across machines.
# Prints the cache dir, which also holds SHA256SUMS (bakery's listing format, so
# the directory doubles as a sysupdate source).
#
# build.conf (sourced) sets:
#   VERSION=1.0          the image's version (file name)
#   FORMAT=squashfs      or erofs
#   NAME=...             the extension's name; default: the directory's name (so two
#                        directories can hold two versions of one extension)
#   BUILDS="V:ARCH ..."  instead of VERSION: one image per version and architecture,
#                        from the same tree; "@VERSION@" and "@ARCH@" in its files are
#                        replaced by each build's values
#   prepare() { ...; }   optional: called with the staged tree as $1 and KVER and
#                        KMODDIR (the boot kernel's lib/modules/KVER) set; for trees
#                        that need files from the kernel package (kernel modules)
# "@KVER@" in a path (a directory usr/lib/modules/@KVER@/) becomes the boot kernel's
# release. Images that take anything from the kernel change with it: the scenarios
# fetch those without a hash (see docs/boot.md).
source "$(dirname "$0")/lib.sh"

kernel=${1:-}
kver='' kmoddir=''
if [[ -n $kernel ]]; then
  kver=$(cat "$kernel/kver"); kmoddir=$kernel/lib/modules/$kver
fi
src=$EE_REPO/boot/extensions
key=$(hash_inputs "$0" "$EE_REPO/boot/lib.sh" "$src" -- "$(basename "${kernel:-nokernel}")" "$kver" \
  "$(dpkg-query -W -f='${Version}' squashfs-tools erofs-utils kmod 2>/dev/null | tr '\n' ' ')")
out=$(cache_dir extensions "$key")
if cache_ready "$out"; then printf '%s\n' "$out"; exit 0; fi

tmp=$(cache_begin "$out")
for dir in "$src"/*/; do
  base=$(basename "$dir")
  VERSION='' FORMAT=squashfs NAME='' BUILDS=''
  unset -f prepare
  # shellcheck disable=SC1091
  source "$dir/build.conf"
  name=${NAME:-$base}
  [[ -n $VERSION || -n $BUILDS ]] || die "$dir/build.conf: VERSION (or BUILDS) is missing"
  [[ -n $BUILDS ]] || BUILDS="$VERSION:x86-64"
  [[ -f $dir/usr/lib/extension-release.d/extension-release.$name ]] ||
    die "$dir: usr/lib/extension-release.d/extension-release.$name is missing"
  for build in $BUILDS; do
    version=${build%%:*} arch=${build#*:}
    stage=$tmp/stage-$name
    rm -rf "$stage"; mkdir -p "$stage"
    for h in usr opt; do [[ -d $dir/$h ]] && cp -a "$dir/$h" "$stage/"; done
    # @KVER@ in paths (deepest first), @VERSION@/@ARCH@/@KVER@ in file contents.
    subst=$(grep -rlZ -e '@VERSION@' -e '@ARCH@' -e '@KVER@' "$stage" | tr '\0' '\n' || true)
    renames=$(find "$stage" -depth -name '*@KVER@*')
    if [[ -z $kver ]] && { [[ -n $renames ]] || grep -rq '@KVER@' "$stage"; }; then
      die "$dir needs the boot kernel (@KVER@): pass KERNEL_DIR"
    fi
    while IFS= read -r p; do
      [[ -n $p ]] && sed -i "s/@VERSION@/$version/g; s/@ARCH@/$arch/g; s/@KVER@/$kver/g" "$p"
    done <<<"$subst"
    while IFS= read -r p; do
      [[ -n $p ]] && mv "$p" "${p%/*}/$(basename "$p" | sed "s/@KVER@/$kver/g")"
    done <<<"$renames"
    if declare -F prepare >/dev/null; then
      [[ -n $kver ]] || die "$dir/build.conf: prepare() needs the boot kernel: pass KERNEL_DIR"
      (cd "$dir" && KVER=$kver KMODDIR=$kmoddir prepare "$stage") || die "$dir/build.conf: prepare failed"
    fi
    # Modes as git keeps them (0644/0755), whatever the umask of the checkout.
    find "$stage" -type d -exec chmod 0755 {} +
    find "$stage" -type f \( -perm -u+x -exec chmod 0755 {} + -o -exec chmod 0644 {} + \)
    img=$tmp/$name-$version-$arch.raw
    [[ ! -e $img ]] || die "$dir: $(basename "$img") is built twice (NAME and VERSION clash)"
    case $FORMAT in
      squashfs) mksquashfs "$stage" "$img" -quiet -noappend -all-root -no-xattrs \
                  -mkfs-time 0 -all-time 0 -processors 1 >/dev/null ;;
      erofs) mkfs.erofs --quiet -T0 -U 6c8c3b2e-5b0f-4f5e-9f57-0ea1e1e1e100 --all-root -x-1 \
               "$img" "$stage" >/dev/null ;;
      *) die "$dir/build.conf: FORMAT must be squashfs or erofs" ;;
    esac
    rm -rf "$stage"
    log "extension: $(basename "$img") ($FORMAT, $(stat -c %s "$img") bytes)"
  done
done
(cd "$tmp" && sha256sum -- *.raw >SHA256SUMS)
cache_commit "$tmp" "$out"
printf '%s\n' "$out"
