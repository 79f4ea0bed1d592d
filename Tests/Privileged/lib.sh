# Sourced by the privileged tests. Each test runs in its own private mount namespace
# (unshare -m --propagation private), on a fresh tmpfs at $SANDBOX; nothing leaks to the host.
set -euo pipefail
: "${EARLYEXT:?EARLYEXT must name the earlyext binary}"
EARLYEXT_LIB=${BASH_SOURCE[0]}
SANDBOX=$(mktemp -d /tmp/earlyext-test.XXXXXX)
mount -t tmpfs -o mode=0755 tmpfs "$SANDBOX"
R=$SANDBOX/root          # the root earlyext extends
S=$SANDBOX/state         # its state dir
W=$SANDBOX/work          # image sources
mkdir -p "$R" "$S" "$W"

# make_root [ID] [VERSION_ID] [extra os-release lines...]: a root with usr/lib/os-release and a base file.
make_root() {
  local id=${1:-debian} version=${2:-12}
  mkdir -p "$R/usr/lib" "$R/usr/share/base" "$R/etc" "$R/opt"
  { echo "ID=$id"; [ -n "$version" ] && echo "VERSION_ID=$version"; shift 2 2>/dev/null || true; printf '%s\n' "$@"; } > "$R/usr/lib/os-release"
  echo base > "$R/usr/share/base/file"
  echo base-shadowed > "$R/usr/share/base/shadowed"
}

# ext_tree NAME [release lines...]: an extension source tree at $W/NAME (default release ID=_any).
ext_tree() {
  local name=$1; shift
  local t=$W/$name
  mkdir -p "$t/usr/lib/extension-release.d" "$t/usr/share/$name" "$t/usr/bin"
  if [ $# -eq 0 ]; then set -- "ID=_any"; fi
  printf '%s\n' "$@" > "$t/usr/lib/extension-release.d/extension-release.$name"
  echo "$name" > "$t/usr/share/$name/file"
  printf '#!/bin/sh\necho %s\n' "$name" > "$t/usr/bin/$name-tool"; chmod +x "$t/usr/bin/$name-tool"
}

# pack NAME FORMAT [DEST]: squashfs|erofs|ext4|dir image of $W/NAME into DEST (default etc/extensions).
pack() {
  local name=$1 fmt=$2 dest=${3:-$R/etc/extensions}
  mkdir -p "$dest"
  case $fmt in
    squashfs) mksquashfs "$W/$name" "$dest/$name.raw" -all-root -noappend -quiet -no-progress >/dev/null ;;
    erofs) mkfs.erofs -q "$dest/$name.raw" "$W/$name" >/dev/null 2>&1 || mkfs.erofs "$dest/$name.raw" "$W/$name" >/dev/null ;;
    ext4) mkfs.ext4 -q -d "$W/$name" "$dest/$name.raw" 8M >/dev/null ;;
    btrfs) truncate -s 120M "$dest/$name.raw"; mkfs.btrfs -q -r "$W/$name" "$dest/$name.raw" >/dev/null ;;
    dir) cp -a "$W/$name" "$dest/$name" ;;
  esac
}

# ext NAME FORMAT [release lines...]: ext_tree + pack into etc/extensions.
ext() { local name=$1 fmt=$2; shift 2; ext_tree "$name" "$@"; pack "$name" "$fmt"; }

# EE_WRAP may name a command to run earlyext under (setpriv, to drop capabilities).
ee() { ${EE_WRAP:-} "$EARLYEXT" --root "$R" --state-dir "$S" "$@"; }

# The mount stack at a path, bottom to top, as "fstype" words (from /proc/self/mountinfo).
stack_at() { awk -v p="$1" '$5 == p { for (i = 7; $i != "-"; i++); print $(i+1) }' /proc/self/mountinfo | tr '\n' ' ' | sed 's/ $//'; }

# A fingerprint of the whole mount table, with the sandbox's volatile bits kept.
mount_snapshot() { awk '{ for (i = 7; $i != "-"; i++); print $5, $(i+1), $6 }' /proc/self/mountinfo | sort; }

# Loop devices bound to anything under the sandbox.
sandbox_loops() { losetup -ln -O NAME,BACK-FILE 2>/dev/null | grep -c "$SANDBOX" || true; }

# All loop devices in use.
all_loops() { losetup -ln -O NAME 2>/dev/null | wc -l; }

# Print "KEY=value" facts for the Swift side to assert on.
fact() { printf 'FACT %s=%s\n' "$1" "$2"; }

# Loop devices under the sandbox once the kernel has finished releasing them (autoclear runs when
# the last user goes; give it up to 3 s).
settled_loops() {
  local n
  for _ in $(seq 30); do n=$(sandbox_loops); [ "$n" = 0 ] && break; sleep 0.1; done
  echo "$n"
}

# serve DIR: start Tests/Fetch/server.py on 127.0.0.1 (a free port) serving DIR; sets PORT and
# SERVER_PID, and stops the server when the script exits.
serve() {
  local dir=$1 lib_dir
  lib_dir=$(dirname "$EARLYEXT_LIB")
  coproc SERVER { exec python3 "$lib_dir/../Fetch/server.py" --root "$dir"; }
  SERVER_PID=$!
  read -r _ PORT <&"${SERVER[0]}"
  trap 'kill -KILL $SERVER_PID 2>/dev/null || true' EXIT
}

# selection NAME URL SHA256 [REQUIRED]: a selection file in ROOT/etc/earlyext/select.d.
selection() {
  mkdir -p "$R/etc/earlyext/select.d"
  printf '[Extension]\nName=%s\nUrl=%s\nSHA256=%s\nRequired=%s\n' "$1" "$2" "$3" "${4:-no}" > "$R/etc/earlyext/select.d/$1.conf"
}
