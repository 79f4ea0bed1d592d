import CShim
import Glibc

// Reading untrusted images: every read is bounds-checked against the size of the file (or block
// device) before it is made, every length read from the image is checked before it is used, and
// every sum is checked for overflow. Nothing read from an image ever sizes an allocation larger
// than a limit named here.

/// An image file or block device opened read-only, with its size. Reads are `pread(2)`s that
/// must lie entirely inside the image.
final class ImageReader {
    let descriptor: FileDescriptor
    /// The size in bytes (`st_size`, or `BLKGETSIZE64` for a block device).
    let size: UInt64
    /// The path, for messages.
    let path: String

    init(descriptor: consuming FileDescriptor, path: String) throws(Errno) {
        let st = try statDescriptor(descriptor.rawValue)
        if ee_s_isblk(st.st_mode) != 0 {
            size = try blockDeviceSize(descriptor.rawValue)
        } else if ee_s_isreg(st.st_mode) != 0 {
            size = UInt64(st.st_size)
        } else {
            throw Errno(rawValue: EINVAL)
        }
        self.descriptor = descriptor
        self.path = path
    }

    /// Opens `path` read-only (O_NOCTTY, O_CLOEXEC).
    static func open(_ path: String) throws(Errno) -> ImageReader {
        try ImageReader(descriptor: try openPath(path, O_RDONLY | O_NOCTTY), path: path)
    }

    /// True if [offset, offset+count) lies inside the image, without overflow.
    func contains(offset: UInt64, count: UInt64) -> Bool {
        let (end, overflow) = offset.addingReportingOverflow(count)
        return !overflow && end <= size
    }

    /// Exactly `count` bytes at `offset`. Throws `ImageFault.outOfBounds` if the range is not
    /// inside the image, and the errno of a failed read otherwise (a short read is EIO).
    func read(offset: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0, contains(offset: offset, count: UInt64(count)) else {
            throw ImageFault.outOfBounds(offset: offset, count: UInt64(max(count, 0)), size: size)
        }
        var buffer = [UInt8](repeating: 0, count: count)
        try buffer.withUnsafeMutableBytes { raw in try readInto(raw, offset: offset) }
        return buffer
    }

    /// Fills `buffer` from `offset` (bounds-checked as `read`).
    func readInto(_ buffer: UnsafeMutableRawBufferPointer, offset: UInt64) throws {
        guard contains(offset: offset, count: UInt64(buffer.count)) else {
            throw ImageFault.outOfBounds(offset: offset, count: UInt64(buffer.count), size: size)
        }
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(descriptor.rawValue, buffer.baseAddress! + done, buffer.count - done,
                                off_t(offset + UInt64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno.current
            }
            if n == 0 { throw Errno(rawValue: EIO) }
            done += n
        }
    }
}

/// A read outside the image: what the image claimed, and how big it is.
struct ImageFault: Error, CustomStringConvertible {
    var description: String
    static func outOfBounds(offset: UInt64, count: UInt64, size: UInt64) -> ImageFault {
        ImageFault(description: "\(count) bytes at offset \(offset) lie beyond the end of the image (\(size) bytes)")
    }
}

// MARK: - Little-endian fields

extension Array where Element == UInt8 {
    /// The little-endian integer at `offset` (the caller checked the length).
    func littleEndian<T: FixedWidthInteger & UnsignedInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value |= T(self[offset + i]) << (8 * i) }
        return value
    }

    /// True if every byte in `range` is zero.
    func allZero(_ range: Range<Int>) -> Bool { self[range].allSatisfy { $0 == 0 } }
}

// MARK: - Hex, base64

/// Lowercase hex of `bytes` (`hexString` lives with SHA256).
/// Parses an even-length hex string (either case) into bytes; nil if it is not one.
func parseHex(_ text: some StringProtocol) -> [UInt8]? {
    let digits = Array(text.utf8)
    guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    var index = 0
    while index < digits.count {
        guard let high = hexNibble(digits[index]), let low = hexNibble(digits[index + 1]) else { return nil }
        bytes.append(high << 4 | low)
        index += 2
    }
    return bytes
}

private func hexNibble(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// Decodes standard base64 (RFC 4648 §4, `=` padding required to a multiple of four). ASCII
/// whitespace is skipped, as systemd's `unbase64mem` does; anything else that is not in the
/// alphabet, a misplaced `=`, or non-zero bits left over in the last group make it nil.
func decodeBase64(_ text: some StringProtocol) -> [UInt8]? {
    var values: [UInt8] = []
    var padding = 0
    for byte in text.utf8 {
        switch byte {
        case 0x20, 0x09, 0x0A, 0x0D: continue
        case UInt8(ascii: "="):
            padding += 1
            values.append(0)
            continue
        default: break
        }
        guard padding == 0 else { return nil } // data after padding
        let value: UInt8
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): value = 62
        case UInt8(ascii: "/"): value = 63
        default: return nil
        }
        values.append(value)
    }
    guard values.count % 4 == 0, padding <= 2 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(values.count / 4 * 3)
    var index = 0
    while index < values.count {
        let a = values[index], b = values[index + 1], c = values[index + 2], d = values[index + 3]
        out.append(a << 2 | b >> 4)
        out.append(b << 4 | c >> 2)
        out.append(c << 6 | d)
        index += 4
    }
    if padding > 0 {
        // The bits under the padding must be zero (canonical encoding).
        let last = values[values.count - 4..<values.count]
        let lastBits = padding == 2 ? last[last.startIndex + 1] & 0x0F : last[last.startIndex + 2] & 0x03
        guard lastBits == 0 else { return nil }
        out.removeLast(padding)
    }
    return out
}

// MARK: - CRC-32 (IEEE 802.3, as GPT uses it)

enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
