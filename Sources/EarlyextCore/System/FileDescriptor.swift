import CShim
import Glibc

/// An owned file descriptor. It is closed exactly once: when the owner goes out of scope, or
/// explicitly with `close()`. `take()` hands the number to a new owner without closing it.
public struct FileDescriptor: ~Copyable {
    public let rawValue: Int32

    /// Takes ownership of `rawValue`, which the caller must not close.
    public init(adopting rawValue: Int32) { self.rawValue = rawValue }

    deinit { _ = Glibc.close(rawValue) }

    /// close(2). Not retried on EINTR: on Linux the descriptor is gone either way.
    public consuming func close() {
        let fd = rawValue
        discard self
        _ = Glibc.close(fd)
    }

    /// Gives up ownership and returns the raw number.
    public consuming func take() -> Int32 {
        let fd = rawValue
        discard self
        return fd
    }

    /// The `/proc/self/fd/N` path of this descriptor, for APIs that want a path (overlayfs
    /// `lowerdir+`, loop device names).
    public var procPath: String { "/proc/self/fd/\(rawValue)" }
}

/// A reference-counted owner of a descriptor, for keeping descriptors in collections
/// (arrays of `~Copyable` values are not available). Closes on the last release.
public final class OwnedDescriptor {
    public let fd: FileDescriptor
    public init(_ fd: consuming FileDescriptor) { self.fd = fd }
    public var rawValue: Int32 { fd.rawValue }
    public var procPath: String { fd.procPath }
}
