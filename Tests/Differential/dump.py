#!/usr/bin/python3
"""dump.py ROOT: a canonical listing of ROOT/usr and ROOT/opt, for diffing two merges.

Two lines per hierarchy for its top mount: its type ("mount usr overlay", or "mount usr -" when
nothing is mounted there) and its ro/nodev/nosuid/noexec flags ("flags usr ro nodev"; the driver
compares these separately), then one line per entry, sorted:

    usr/share/foo/file f 0644 0:0 sha256:0123456789abcdef
    usr/bin/foo        l 0777 0:0 -> ../lib/foo/foo
    usr/share/foo      d 0755 0:0

A hierarchy that is a symlink (ROOT/opt -> var/opt) is listed as the link plus the tree it
resolves to inside the root. Timestamps and inode numbers are left out. `.systemd-sysext/dev` is listed without its content
(it holds the overlay's device number, which differs between any two mounts).
"""
import hashlib
import os
import stat
import sys

TYPES = {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l", stat.S_IFCHR: "c",
         stat.S_IFBLK: "b", stat.S_IFIFO: "p", stat.S_IFSOCK: "s"}


def unescape(field):
    return field.encode().decode("unicode_escape")


def top_mount(path):
    """(fstype, per-mount options) of the topmost mount at path, or None."""
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if unescape(fields[4]) == path:
                found = (fields[sep + 1], fields[5].split(","))
    return found


def entry(path, rel):
    st = os.lstat(path)
    kind = TYPES.get(stat.S_IFMT(st.st_mode), "?")
    line = f"{rel} {kind} {stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid}"
    if kind == "f":
        if rel.endswith("/.systemd-sysext/dev"):
            line += " (device number)"
        else:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 16), b""):
                    digest.update(block)
            line += f" sha256:{digest.hexdigest()[:16]} size:{st.st_size}"
    elif kind == "l":
        line += " -> " + os.readlink(path)
    elif kind in "cb":
        line += f" {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return line


def resolve_in_root(root, rel, depth=0):
    """ROOT/rel with symlinks chased inside the root (as systemd's chase() with a root does)."""
    path = root
    parts = [p for p in rel.split("/") if p]
    while parts:
        part = parts.pop(0)
        if part == "..":
            path = os.path.dirname(path) if path != root else root
            continue
        candidate = os.path.join(path, part)
        if os.path.islink(candidate) and depth < 32:
            target = os.readlink(candidate)
            base = root if target.startswith("/") else path
            rest = "/".join(parts)
            return resolve_in_root(root, os.path.relpath(os.path.join(base, target.lstrip("/")), root) + "/" + rest, depth + 1)
        path = candidate
    return path


def dump(root):
    lines = []
    for h in ("usr", "opt"):
        link = os.path.join(root, h)
        top = resolve_in_root(root, h)
        if top != link:
            # The hierarchy is a symlink: list the link, then the tree it leads to, under h's name.
            lines.append(entry(link, h + " (link)"))
        mount = top_mount(top) if os.path.isdir(top) else None
        if mount:
            flags = " ".join(flag for flag in ("ro", "nodev", "nosuid", "noexec") if flag in mount[1])
            lines.append(f"mount {h} {mount[0]}")
            lines.append(f"flags {h} {flags}".rstrip())
        else:
            lines.append(f"mount {h} -")
            lines.append(f"flags {h} -")
        if not os.path.lexists(top):
            lines.append(f"{h} absent")
            continue
        lines.append(entry(top, h))
        if os.path.islink(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                lines.append(entry(path, h + "/" + os.path.relpath(path, top)))
    return sorted(lines)


if __name__ == "__main__":
    sys.stdout.write("".join(line + "\n" for line in dump(sys.argv[1])))
