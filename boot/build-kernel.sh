#!/usr/bin/env bash
# Downloads (never installs) Linux 6.12 "cloud" from bookworm-backports through a
# private apt configuration, unpacks it and runs depmod. Prints the cache dir,
# which holds: vmlinuz, kver, and lib/modules/$KV.
# The host's own apt sources and state are never touched.
source "$(dirname "$0")/lib.sh"
need_root

key=$(hash_inputs "$0" "$EE_REPO/boot/lib.sh" -- "$EE_MIRROR")
out=$(cache_dir kernel "$key")
if cache_ready "$out"; then printf '%s\n' "$out"; exit 0; fi

log "kernel: downloading Linux 6.12 (bookworm-backports) into $out"
tmp=$(cache_begin "$out")
apt=$tmp/apt
mkdir -p "$apt"/{lists/partial,cache/archives/partial,parts,prefs}
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $EE_MIRROR bookworm-backports main" >"$apt/sources.list"
APT_OPTS=(
  -o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts"
  -o "Dir::Etc::Preferences=$apt/prefs/none" -o "Dir::Etc::PreferencesParts=$apt/prefs"
  -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
  -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root"
)
apt-get -q "${APT_OPTS[@]}" update >&2
pkg=$(apt-cache "${APT_OPTS[@]}" pkgnames linux-image-6.12 |
  grep -E '^linux-image-6\.12\.[^ ]*-cloud-amd64-unsigned$' | sort -V | tail -1)
[[ -n $pkg ]] || die "no linux-image-6.12.*-cloud-amd64-unsigned in bookworm-backports"
log "kernel: $pkg"
(cd "$tmp" && apt-get -q "${APT_OPTS[@]}" download "$pkg" >&2)
dpkg -x "$tmp"/"$pkg"_*.deb "$tmp/root"
kver=${pkg#linux-image-}; kver=${kver%-unsigned}
moddir=$tmp/root/lib/modules/$kver
[[ -d $moddir ]] || moddir=$tmp/root/usr/lib/modules/$kver
[[ -d $moddir ]] || die "no modules dir for $kver in $pkg"
mkdir -p "$tmp/lib/modules"
mv "$moddir" "$tmp/lib/modules/$kver"
depmod -b "$tmp" "$kver"
cp "$tmp/root/boot/vmlinuz-$kver" "$tmp/vmlinuz"
echo "$kver" >"$tmp/kver"
echo "$pkg" >"$tmp/package"
rm -rf "$tmp/root" "$apt" "$tmp"/*.deb
cache_commit "$tmp" "$out"
log "kernel: ready ($kver)"
printf '%s\n' "$out"
