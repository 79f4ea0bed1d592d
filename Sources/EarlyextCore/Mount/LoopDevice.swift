import CShim
import Glibc

/// A loop device bound to an image file with LOOP_CONFIGURE: read-only, autoclear, and direct
/// I/O where the backing file allows it. Autoclear means the kernel releases the device when the
/// last user goes away: this descriptor, or the filesystem mounted from it. So a failure anywhere
/// before publish leaks no loop device.
public struct LoopDevice: ~Copyable {
    public let descriptor: FileDescriptor
    public let number: Int32
    public var path: String { "/dev/loop\(number)" }
    public let directIO: Bool

    /// /dev/loop-control, opened once per process (every image of a merge needs it).
    private static let control: Result<Int32, Errno> = Result { () throws(Errno) in
        try openPath("/dev/loop-control", O_RDWR).take()
    }

    /// Hands the device's descriptor to a new owner (the device stays bound to it).
    public consuming func take() -> FileDescriptor { descriptor }

    /// Attaches `backing` (an open, read-only image file) to a free loop device.
    /// Retries when another process takes the device between LOOP_CTL_GET_FREE and LOOP_CONFIGURE.
    /// `offset` and `sizeLimit` (bytes; 0 = to the end) expose one partition of a disk image.
    public static func attach(_ backing: Int32, name: String, offset: UInt64 = 0, sizeLimit: UInt64 = 0) throws(Errno) -> LoopDevice {
        let control = try LoopDevice.control.get()
        var lastError = Errno.busy
        for _ in 0..<64 {
            let number = try loopControlGetFree(control)
            let device: FileDescriptor
            do throws(Errno) {
                device = try openPath("/dev/loop\(number)", O_RDONLY)
            } catch where error == .noSuchFile {
                lastError = error
                continue // the node is not there yet (no devtmpfs event): take another
            }
            let base = UInt32(LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR)
            do throws(Errno) {
                try loopConfigure(device.rawValue, backing: backing, flags: base | UInt32(LO_FLAGS_DIRECT_IO),
                                  blockSize: 0, offset: offset, sizeLimit: sizeLimit, name: name)
                return LoopDevice(descriptor: device, number: number, directIO: true)
            } catch where error == .invalid {
                // The backing file cannot do direct I/O (tmpfs, unaligned): buffered instead.
                do throws(Errno) {
                    try loopConfigure(device.rawValue, backing: backing, flags: base, blockSize: 0,
                                      offset: offset, sizeLimit: sizeLimit, name: name)
                    return LoopDevice(descriptor: device, number: number, directIO: false)
                } catch where error == .busy {
                    lastError = error
                }
            } catch where error == .busy {
                lastError = error
            }
        }
        throw lastError
    }
}
