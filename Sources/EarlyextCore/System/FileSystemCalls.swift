import CShim
import Glibc

// The system calls the fetcher adds to those in SystemCalls.swift: each wrapped once, throwing
// `Errno`, retrying EINTR.

/// pwrite(2) until every byte of `bytes` is written at `offset`.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) {
    var done = 0
    while done < bytes.count {
        let written = try valueOrErrno {
            Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
        }
        done += written
    }
}

/// pread(2) of up to `buffer.count` bytes at `offset`; 0 at end of file.
func readSome(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
    try valueOrErrno { Glibc.pread(fd, buffer.baseAddress!, buffer.count, off_t(offset)) }
}

/// ftruncate(2).
func truncateDescriptor(_ fd: Int32, to length: Int64) throws(Errno) {
    _ = try valueOrErrno { Glibc.ftruncate(fd, off_t(length)) }
}

/// fchmod(2).
func changeMode(_ fd: Int32, _ mode: mode_t) throws(Errno) {
    _ = try valueOrErrno { Glibc.fchmod(fd, mode) }
}

/// fstatvfs(3): the file system's block counts, for the free-space check.
func fileSystemStatistics(_ fd: Int32) throws(Errno) -> statvfs {
    var result = statvfs()
    _ = try valueOrErrno { Glibc.fstatvfs(fd, &result) }
    return result
}

/// symlinkat(2): creates `linkPath` under `dirfd` pointing at `target`.
func makeSymlink(_ target: String, at dirfd: Int32, _ linkPath: String) throws(Errno) {
    _ = try valueOrErrno { Glibc.symlinkat(target, dirfd, linkPath) }
}

/// fsetxattr(2).
func setExtendedAttribute(_ fd: Int32, _ name: String, _ value: [UInt8]) throws(Errno) {
    _ = try valueOrErrno { fsetxattr(fd, name, value, value.count, 0) }
}

/// nanosleep(2) for `seconds`, restarted with the remaining time on EINTR.
func sleep(seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1_000_000_000))
    var remaining = timespec()
    while Glibc.nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
}

/// mkdtemp(3): a new private directory named `prefix` + six random characters.
func makeTemporaryDirectory(prefix: String) throws(Errno) -> String {
    var template = Array((prefix + "XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { Glibc.mkdtemp($0.baseAddress!) }
    guard let made else { throw Errno.current }
    return String(cString: made)
}
