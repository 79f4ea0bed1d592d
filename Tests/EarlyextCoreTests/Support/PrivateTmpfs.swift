import Foundation
import Glibc
@testable import EarlyextCore

/// Runs `body` on a thread of its own that has entered a new mount namespace (mount namespaces
/// are per thread) with a tmpfs of `size` (tmpfs's `size=` syntax) mounted at `mountPoint`, so
/// the tmpfs is never visible to the rest of the test process or the system. Returns why the
/// setup failed, or nil once `body` ran. Root only.
func withPrivateTmpfs(at mountPoint: String, size: String, _ body: @escaping () -> Void) -> String? {
    final class Box: @unchecked Sendable { var setup: String? }
    let box = Box()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        defer { done.signal() }
        guard unshareMountNamespace() == 0 else { box.setup = "unshare: \(Errno.current)"; return }
        guard mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0 else { box.setup = "make-rprivate: \(Errno.current)"; return }
        guard mount("tmpfs", mountPoint, "tmpfs", 0, "size=\(size)") == 0 else { box.setup = "mount tmpfs: \(Errno.current)"; return }
        body()
        _ = umount2(mountPoint, Int32(MNT_DETACH))
    }
    thread.start()
    done.wait()
    return box.setup
}

/// unshare(CLONE_NEWNS) for the calling thread. glibc declares unshare() only under _GNU_SOURCE,
/// so it is looked up by name.
private func unshareMountNamespace() -> Int32 {
    typealias Unshare = @convention(c) (Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "unshare") else { return -1 }
    return unsafeBitCast(symbol, to: Unshare.self)(0x0002_0000 /* CLONE_NEWNS */)
}
