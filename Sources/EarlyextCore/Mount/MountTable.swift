import CMount
import Glibc

/// One line of /proc/self/mountinfo.
public struct MountEntry: Equatable, Sendable {
    public var id: Int32
    public var parentID: Int32
    public var target: String
    public var root: String
    public var fstype: String
    public var source: String
    public var options: String
    public var propagation: String  // "shared:N", "master:N", "" (private)
    public var device: UInt64       // major/minor as dev_t
}

/// The mount table of this process's namespace, read with libmount (mnt_table_parse_file).
public struct MountTable: Sendable {
    public var entries: [MountEntry]

    public static func current() throws -> MountTable {
        guard let table = mnt_new_table() else {
            throw EarlyextError(.system, "cannot allocate a libmount table", errno: .current)
        }
        defer { mnt_unref_table(table) }
        let result = mnt_table_parse_file(table, "/proc/self/mountinfo")
        guard result == 0 else {
            throw EarlyextError(.system, "cannot read /proc/self/mountinfo", errno: Errno(rawValue: -result))
        }
        guard let iterator = mnt_new_iter(Int32(MNT_ITER_FORWARD)) else {
            throw EarlyextError(.system, "cannot allocate a libmount iterator", errno: .current)
        }
        defer { mnt_free_iter(iterator) }
        var entries: [MountEntry] = []
        var fs: OpaquePointer? = nil
        while mnt_table_next_fs(table, iterator, &fs) == 0, let fs {
            func text(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }
            entries.append(MountEntry(
                id: mnt_fs_get_id(fs), parentID: mnt_fs_get_parent_id(fs),
                target: text(mnt_fs_get_target(fs)), root: text(mnt_fs_get_root(fs)),
                fstype: text(mnt_fs_get_fstype(fs)), source: text(mnt_fs_get_source(fs)),
                options: text(mnt_fs_get_options(fs)), propagation: text(mnt_fs_get_optional_fields(fs)),
                device: UInt64(mnt_fs_get_devno(fs))))
        }
        return MountTable(entries: entries)
    }

    /// Every mount whose mount point is exactly `path`, bottom to top (stacked mounts: each
    /// later one is mounted over the one before).
    public func stack(at path: String) -> [MountEntry] {
        let here = entries.filter { $0.target == path }
        guard !here.isEmpty else { return [] }
        // Order by parentage: the bottom one's parent is not itself at `path`.
        let ids = Set(here.map(\.id))
        var ordered: [MountEntry] = []
        var current = here.first { !ids.contains($0.parentID) }
        while let entry = current {
            ordered.append(entry)
            current = here.first { $0.parentID == entry.id }
        }
        return ordered.count == here.count ? ordered : here
    }

    /// The mount visible at `path`: the top of its stack.
    public func top(at path: String) -> MountEntry? { stack(at: path).last }

    /// Mounts strictly below `path` (nested mounts such as /usr/share/foo under /usr).
    public func nested(under path: String) -> [MountEntry] {
        let prefix = path.hasSuffix("/") ? path : path + "/"
        return entries.filter { $0.target.hasPrefix(prefix) }
    }
}
