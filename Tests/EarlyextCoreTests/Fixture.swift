import CShim
import Glibc
@testable import EarlyextCore

/// A fresh temporary directory (mkdtemp) holding a fixture tree; removed when the fixture goes away.
final class Fixture {
    let root: String

    init() throws {
        var template = Array("/tmp/earlyext-test-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Errno.current
        }
        root = String(cString: made)
    }

    deinit { removeTree(root) }

    /// The host path of `path` (taken relative to the fixture root).
    func path(_ path: String) -> String {
        root + "/" + path.drop { $0 == "/" }
    }

    func directory(_ path: String) throws {
        try makeDirectories(self.path(path))
    }

    func file(_ path: String, _ text: String = "content\n") throws {
        try makeParent(path)
        try writeTextFile(at: AT_FDCWD, self.path(path), text)
    }

    func link(_ path: String, to target: String) throws {
        try makeParent(path)
        guard symlink(target, self.path(path)) == 0 else { throw Errno.current }
    }

    func fifo(_ path: String) throws {
        try makeParent(path)
        guard mkfifo(self.path(path), 0o600) == 0 else { throw Errno.current }
    }

    /// Sets a user xattr; returns the errno if the file system refuses.
    func setAttribute(_ path: String, _ name: String, _ value: String) -> Errno? {
        let bytes = Array(value.utf8)
        return setxattr(self.path(path), name, bytes, bytes.count, 0) == 0 ? nil : Errno.current
    }

    /// Opens `path` (a directory under the fixture) for the image-root APIs.
    func open(_ path: String) throws -> FileDescriptor {
        try openPath(self.path(path), O_RDONLY | O_DIRECTORY)
    }

    private func makeParent(_ path: String) throws {
        let full = self.path(path)
        if let slash = full.lastIndex(of: "/") { try makeDirectories(String(full[..<slash])) }
    }
}

/// rm -rf, without following symlinks.
func removeTree(_ path: String) {
    var status = stat()
    guard lstat(path, &status) == 0 else { return }
    if (status.st_mode & S_IFMT) == S_IFDIR {
        if let fd = try? openPath(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), let entries = try? directoryEntries(fd.rawValue) {
            for entry in entries { removeTree(path + "/" + entry.name) }
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// An extension-release / os-release text from key-value pairs.
func releaseText(_ fields: KeyValuePairs<String, String>) -> String {
    fields.map { "\($0.key)=\($0.value)\n" }.joined()
}
