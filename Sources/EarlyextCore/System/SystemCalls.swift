import CShim
import Glibc

// Each system call earlyext makes is wrapped once here: a small internal function that returns the
// value or throws `Errno`, retrying on EINTR (except close(2), see FileDescriptor).

@inline(__always)
func valueOrErrno<T: FixedWidthInteger>(_ body: () -> T) throws(Errno) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let error = Errno.current
        if error != .interrupted { throw error }
    }
}

@inline(__always)
func descriptorOrErrno(_ body: () -> Int32) throws(Errno) -> FileDescriptor {
    FileDescriptor(adopting: try valueOrErrno(body))
}

// MARK: - Files

/// openat(2) with O_CLOEXEC.
func openAt(_ dirfd: Int32, _ path: String, _ flags: Int32, mode: mode_t = 0) throws(Errno) -> FileDescriptor {
    try descriptorOrErrno { Glibc.openat(dirfd, path, flags | O_CLOEXEC, mode) }
}

/// openat2(2) with O_CLOEXEC and `resolve` (RESOLVE_* flags); ENOSYS before Linux 5.6.
func openAt2(_ dirfd: Int32, _ path: String, _ flags: Int32, resolve: UInt64) throws(Errno) -> FileDescriptor {
    try descriptorOrErrno { ee_openat2(dirfd, path, UInt64(UInt32(bitPattern: flags | O_CLOEXEC)), resolve) }
}

/// open(2) with O_CLOEXEC.
func openPath(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(Errno) -> FileDescriptor {
    try openAt(AT_FDCWD, path, flags, mode: mode)
}

/// fstatat(2). `flags` is AT_SYMLINK_NOFOLLOW and/or AT_EMPTY_PATH.
func statAt(_ dirfd: Int32, _ path: String, flags: Int32 = 0) throws(Errno) -> stat {
    var st = stat()
    _ = try valueOrErrno { Glibc.fstatat(dirfd, path, &st, flags) }
    return st
}

/// fstat(2).
func statDescriptor(_ fd: Int32) throws(Errno) -> stat {
    var st = stat()
    _ = try valueOrErrno { Glibc.fstat(fd, &st) }
    return st
}

/// readlinkat(2).
func readLinkAt(_ dirfd: Int32, _ path: String) throws(Errno) -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = try valueOrErrno { Glibc.readlinkat(dirfd, path, &buffer, buffer.count - 1) }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// read(2) until end of file, at most `limit` bytes (more is an error: EFBIG).
func readAll(_ fd: Int32, limit: Int = 1 << 20) throws(Errno) -> [UInt8] {
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while true {
        let count = try valueOrErrno { Glibc.read(fd, &chunk, chunk.count) }
        if count == 0 { return result }
        result.append(contentsOf: chunk[0..<count])
        if result.count > limit { throw Errno(rawValue: EFBIG) }
    }
}

/// Opens `path` under `dirfd` and reads it whole, as UTF-8 text.
func readTextFile(at dirfd: Int32, _ path: String, limit: Int = 1 << 20) throws(Errno) -> String {
    let fd = try openAt(dirfd, path, O_RDONLY | O_NOCTTY)
    return String(decoding: try readAll(fd.rawValue, limit: limit), as: UTF8.self)
}

/// write(2) until every byte is written.
func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
    var remaining = bytes[...]
    while !remaining.isEmpty {
        let chunk = Array(remaining)
        let written = try valueOrErrno { Glibc.write(fd, chunk, chunk.count) }
        remaining = remaining.dropFirst(written)
    }
}

/// Creates (or truncates) `path` under `dirfd` and writes `text` to it.
func writeTextFile(at dirfd: Int32, _ path: String, _ text: String, mode: mode_t = 0o644) throws(Errno) {
    let fd = try openAt(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode: mode)
    try writeAll(fd.rawValue, Array(text.utf8))
}

/// fsync(2).
func syncDescriptor(_ fd: Int32) throws(Errno) {
    _ = try valueOrErrno { Glibc.fsync(fd) }
}

/// renameat(2).
func renameAt(_ fromDir: Int32, _ from: String, _ toDir: Int32, _ to: String) throws(Errno) {
    _ = try valueOrErrno { Glibc.renameat(fromDir, from, toDir, to) }
}

/// unlinkat(2).
func unlinkAt(_ dirfd: Int32, _ path: String, flags: Int32 = 0) throws(Errno) {
    _ = try valueOrErrno { Glibc.unlinkat(dirfd, path, flags) }
}

/// mkdirat(2). An existing directory is not an error.
func makeDirectory(at dirfd: Int32, _ path: String, mode: mode_t = 0o755) throws(Errno) {
    do throws(Errno) {
        _ = try valueOrErrno { Glibc.mkdirat(dirfd, path, mode) }
    } catch where error == .exists {
        let st = try statAt(dirfd, path)
        if ee_s_isdir(st.st_mode) == 0 { throw Errno.notDirectory }
    }
}

/// mkdir -p, relative to `dirfd` (or absolute).
func makeDirectories(at dirfd: Int32 = AT_FDCWD, _ path: String, mode: mode_t = 0o755) throws(Errno) {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += component
        try makeDirectory(at: dirfd, prefix, mode: mode)
        prefix += "/"
    }
}

/// fgetxattr(2) on an open descriptor. Returns nil when the attribute is absent.
func extendedAttribute(_ fd: Int32, _ name: String) throws(Errno) -> [UInt8]? {
    var buffer = [UInt8](repeating: 0, count: 256)
    do throws(Errno) {
        let count = try valueOrErrno { fgetxattr(fd, name, &buffer, buffer.count) }
        return Array(buffer[0..<count])
    } catch where error == .noData || error == .notSupported {
        return nil
    }
}

/// Whether the directory open as `dirfd` has an entry besides "." and "..": getdents64(2) on
/// it, from its current offset (a freshly opened descriptor), stopping at the first such entry.
func directoryHasEntries(_ dirfd: Int32) throws(Errno) -> Bool {
    var buffer = [UInt8](repeating: 0, count: 1024)
    while true {
        let filled = try valueOrErrno { buffer.withUnsafeMutableBytes { ee_getdents64(dirfd, $0.baseAddress, $0.count) } }
        guard filled > 0 else { return false }
        // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
        var offset = 0
        while offset + 19 < filled {
            let length = Int(buffer[offset + 16]) | Int(buffer[offset + 17]) << 8
            guard length > 0 else { return false }
            let name = buffer[(offset + 19)...].prefix { $0 != 0 }
            if !(name.elementsEqual([0x2e]) || name.elementsEqual([0x2e, 0x2e])) { return true }
            offset += length
        }
    }
}

/// The names in a directory (without `.` and `..`), via fdopendir(3)/readdir(3) on a dup of `dirfd`.
func directoryEntries(_ dirfd: Int32) throws(Errno) -> [(name: String, type: UInt8)] {
    let copy = try valueOrErrno { Glibc.fcntl(dirfd, F_DUPFD_CLOEXEC, 0) }
    guard let dir = Glibc.fdopendir(copy) else {
        let error = Errno.current
        _ = Glibc.close(copy)
        throw error
    }
    defer { Glibc.closedir(dir) }
    Glibc.rewinddir(dir)
    var entries: [(String, UInt8)] = []
    while true {
        Glibc.errno = 0
        guard let entry = Glibc.readdir(dir) else {
            if Glibc.errno != 0 { throw Errno.current }
            return entries
        }
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
        if name == "." || name == ".." { continue }
        entries.append((name, entry.pointee.d_type))
    }
}

// MARK: - The new mount API

/// fsopen(2) with FSOPEN_CLOEXEC.
func fsOpen(_ type: String) throws(Errno) -> FileDescriptor {
    try descriptorOrErrno { ee_fsopen(type, UInt32(FSOPEN_CLOEXEC)) }
}

/// fsconfig(2) FSCONFIG_SET_STRING.
func fsConfigSetString(_ fd: Int32, _ key: String, _ value: String) throws(Errno) {
    _ = try valueOrErrno { ee_fsconfig(fd, ee_FSCONFIG_SET_STRING, key, value, 0) }
}

/// fsconfig(2) FSCONFIG_SET_FLAG.
func fsConfigSetFlag(_ fd: Int32, _ key: String) throws(Errno) {
    _ = try valueOrErrno { ee_fsconfig(fd, ee_FSCONFIG_SET_FLAG, key, nil, 0) }
}

/// fsconfig(2) FSCONFIG_SET_FD.
func fsConfigSetDescriptor(_ fd: Int32, _ key: String, _ value: Int32) throws(Errno) {
    _ = try valueOrErrno { ee_fsconfig(fd, ee_FSCONFIG_SET_FD, key, nil, value) }
}

/// fsconfig(2) FSCONFIG_CMD_CREATE.
func fsConfigCreate(_ fd: Int32) throws(Errno) {
    _ = try valueOrErrno { ee_fsconfig(fd, ee_FSCONFIG_CMD_CREATE, nil, nil, 0) }
}

/// fsmount(2) with FSMOUNT_CLOEXEC. `attributes` are MOUNT_ATTR_* bits.
func fsMount(_ fd: Int32, attributes: UInt32) throws(Errno) -> FileDescriptor {
    try descriptorOrErrno { ee_fsmount(fd, UInt32(FSMOUNT_CLOEXEC), attributes) }
}

/// open_tree(2). With OPEN_TREE_CLONE the result is a detached copy of the tree.
func openTree(_ dirfd: Int32, _ path: String, flags: UInt32) throws(Errno) -> FileDescriptor {
    try descriptorOrErrno { ee_open_tree(dirfd, path, flags | UInt32(OPEN_TREE_CLOEXEC)) }
}

/// move_mount(2).
func moveMount(from fromDir: Int32, _ fromPath: String, to toDir: Int32, _ toPath: String, flags: UInt32) throws(Errno) {
    _ = try valueOrErrno { ee_move_mount(fromDir, fromPath, toDir, toPath, flags) }
}

/// mount_setattr(2).
func mountSetAttributes(_ dirfd: Int32, _ path: String, flags: UInt32, set: UInt64, clear: UInt64, propagation: UInt64) throws(Errno) {
    _ = try valueOrErrno { ee_mount_setattr(dirfd, path, flags, set, clear, propagation) }
}

/// umount2(2).
func unmount(_ path: String, flags: Int32) throws(Errno) {
    _ = try valueOrErrno { Glibc.umount2(path, flags) }
}

// MARK: - Loop devices

/// ioctl(LOOP_CTL_GET_FREE).
func loopControlGetFree(_ controlFD: Int32) throws(Errno) -> Int32 {
    try valueOrErrno { ee_loop_ctl_get_free(controlFD) }
}

/// ioctl(LOOP_CONFIGURE). `offset` and `sizeLimit` in bytes (0, 0: the whole file).
func loopConfigure(_ loopFD: Int32, backing: Int32, flags: UInt32, blockSize: UInt32,
                   offset: UInt64 = 0, sizeLimit: UInt64 = 0, name: String) throws(Errno) {
    _ = try valueOrErrno { ee_loop_configure(loopFD, backing, flags, blockSize, offset, sizeLimit, name) }
}

/// ioctl(LOOP_SET_DIRECT_IO).
func loopSetDirectIO(_ loopFD: Int32, _ enable: Bool) throws(Errno) {
    _ = try valueOrErrno { ee_loop_set_direct_io(loopFD, enable ? 1 : 0) }
}

/// ioctl(LOOP_GET_STATUS64), returning lo_flags.
func loopGetFlags(_ loopFD: Int32) throws(Errno) -> UInt32 {
    var flags: UInt32 = 0
    _ = try valueOrErrno { ee_loop_get_flags(loopFD, &flags) }
    return flags
}

/// ioctl(BLKGETSIZE64).
func blockDeviceSize(_ fd: Int32) throws(Errno) -> UInt64 {
    var size: UInt64 = 0
    _ = try valueOrErrno { ee_blk_get_size64(fd, &size) }
    return size
}

// MARK: - Flags glibc hides behind _GNU_SOURCE (see CShim.h)

/// open(2) O_PATH.
let O_PATH: Int32 = ee_O_PATH
/// *at(2) AT_EMPTY_PATH.
let AT_EMPTY_PATH: Int32 = ee_AT_EMPTY_PATH
