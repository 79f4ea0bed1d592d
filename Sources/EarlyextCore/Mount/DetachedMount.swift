import CShim
import Glibc

/// Attributes of a mount, as set by fsmount(2) and mount_setattr(2) (`MOUNT_ATTR_*`).
public struct MountAttributes: OptionSet, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readOnly = MountAttributes(rawValue: UInt32(MOUNT_ATTR_RDONLY))
    public static let noSetuid = MountAttributes(rawValue: UInt32(MOUNT_ATTR_NOSUID))
    public static let noDevices = MountAttributes(rawValue: UInt32(MOUNT_ATTR_NODEV))
    public static let noExec = MountAttributes(rawValue: UInt32(MOUNT_ATTR_NOEXEC))
}

/// A mount tree that is not attached to any mount point: the descriptor of fsmount(2) or
/// open_tree(OPEN_TREE_CLONE). While detached, closing the descriptor (dropping the last
/// reference) unmounts it, which is how every failure path cleans up. Once attached with
/// `attach(beneath:)`/`attach(onto:)` the mount belongs to the namespace.
public final class DetachedMount {
    public let descriptor: FileDescriptor
    /// What this mount is, for messages: "squashfs on /dev/loop3", "clone of /sysroot/usr".
    public let label: String

    init(_ descriptor: consuming FileDescriptor, label: String) {
        self.descriptor = descriptor
        self.label = label
    }

    public var rawValue: Int32 { descriptor.rawValue }

    /// The `/proc/self/fd/N` path, for overlayfs `lowerdir+`.
    public var procPath: String { descriptor.procPath }

    /// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `path`, or a bind of
    /// `path` when it is a plain directory. Without `recursive`, mounts below `path` are left out.
    public static func clone(_ path: String, recursive: Bool = false) throws(Errno) -> DetachedMount {
        var flags = UInt32(OPEN_TREE_CLONE)
        if recursive { flags |= UInt32(AT_RECURSIVE) }
        return DetachedMount(try openTree(AT_FDCWD, path, flags: flags), label: "clone of \(path)")
    }

    /// mount_setattr(2) on the whole tree.
    public func setAttributes(_ set: MountAttributes, clear: MountAttributes = []) throws(Errno) {
        try mountSetAttributes(rawValue, "", flags: UInt32(AT_EMPTY_PATH | AT_RECURSIVE),
                               set: UInt64(set.rawValue), clear: UInt64(clear.rawValue), propagation: 0)
    }

    /// mount_setattr(2) with `MS_PRIVATE` propagation on the whole tree.
    public func makePrivate() throws(Errno) {
        try mountSetAttributes(rawValue, "", flags: UInt32(AT_EMPTY_PATH | AT_RECURSIVE),
                               set: 0, clear: 0, propagation: UInt64(MS_PRIVATE))
    }

    /// openat(2) of a directory inside the mount, as an `O_PATH` descriptor.
    public func openDirectory(_ path: String) throws(Errno) -> FileDescriptor {
        try openAt(rawValue, path.isEmpty ? "." : path, O_PATH | O_DIRECTORY | O_NOFOLLOW)
    }

    /// move_mount(2) with MOVE_MOUNT_BENEATH: attaches this tree beneath the top mount at `target`.
    public func attach(beneath target: String) throws(Errno) {
        try moveMount(from: rawValue, "", to: AT_FDCWD, target,
                      flags: UInt32(MOVE_MOUNT_F_EMPTY_PATH) | UInt32(MOVE_MOUNT_BENEATH))
    }

    /// move_mount(2): attaches this tree on top of `target`.
    public func attach(onto target: String) throws(Errno) {
        try moveMount(from: rawValue, "", to: AT_FDCWD, target, flags: UInt32(MOVE_MOUNT_F_EMPTY_PATH))
    }
}

/// A filesystem context from fsopen(2), configured with fsconfig(2) and turned into a detached
/// mount with fsmount(2).
public struct FilesystemContext: ~Copyable {
    let descriptor: FileDescriptor
    let type: String

    /// fsopen(2).
    public init(type: String) throws(Errno) {
        descriptor = try fsOpen(type)
        self.type = type
    }

    /// fsconfig(FSCONFIG_SET_STRING).
    public func set(_ key: String, _ value: String) throws(Errno) {
        try fsConfigSetString(descriptor.rawValue, key, value)
    }

    /// fsconfig(FSCONFIG_SET_FLAG).
    public func set(flag key: String) throws(Errno) {
        try fsConfigSetFlag(descriptor.rawValue, key)
    }

    /// fsconfig(FSCONFIG_CMD_CREATE) then fsmount(2).
    public func mount(attributes: MountAttributes, label: String) throws(Errno) -> DetachedMount {
        try fsConfigCreate(descriptor.rawValue)
        return DetachedMount(try fsMount(descriptor.rawValue, attributes: attributes.rawValue), label: label)
    }

    /// The kernel's own explanation of the last failure, read from the context (fsopen(2) log).
    public func kernelMessages() -> String {
        var lines: [String] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while true {
            let count = Glibc.read(descriptor.rawValue, &buffer, buffer.count)
            if count <= 0 { break }
            // Each message is "e text", "w text" or "i text" (error, warning, info), maybe with a newline.
            var line = Substring(String(decoding: buffer[0..<count], as: UTF8.self))
            while line.last == "\n" { line = line.dropLast() }
            if line.count > 2, "ewi".contains(line.first!), line.dropFirst().first == " " { line = line.dropFirst(2) }
            lines.append(String(line))
        }
        return lines.joined(separator: "; ")
    }
}
