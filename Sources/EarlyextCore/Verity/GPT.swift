/// A GPT partition table, parsed by earlyext itself from an untrusted image (docs/verity.md says
/// why not libblkid or libfdisk): every field is checked against the spec (UEFI 2.10 §5.3) and
/// against the size of the image before it is used, and both CRC32s must match.
///
/// Only the primary header and its entry array are read. A damaged primary is an error, not a
/// reason to trust the backup: an image earlyext did not write has no business being repaired.
struct GPTTable: Equatable {
    /// 512 or 4096: where the header was found (LBA 1).
    var sectorSize: Int
    var diskGUID: GUID
    var firstUsableLBA: UInt64
    var lastUsableLBA: UInt64
    /// The used entries (type GUID not zero), in table order.
    var partitions: [GPTPartition]
}

struct GPTPartition: Equatable {
    /// 1-based, as in /dev/loop0p1.
    var number: Int
    var type: GUID
    var uuid: GUID
    var firstLBA: UInt64
    var lastLBA: UInt64
    var attributes: UInt64
    var label: String
    /// In bytes, inside the image (checked).
    var offset: UInt64
    var size: UInt64

    /// Attribute bit 63 of the Discoverable Partitions Specification: "do not mount automatically".
    var noAuto: Bool { attributes & (1 << 63) != 0 }
}

/// A 128-bit GUID, held in its textual byte order (the order of `8484680c-9521-…`).
struct GUID: Hashable, CustomStringConvertible {
    var bytes: [UInt8]

    static let zero = GUID(bytes: [UInt8](repeating: 0, count: 16))

    /// From the 16 bytes on disk, where the first three fields are little-endian.
    init(onDisk raw: ArraySlice<UInt8>) {
        let b = Array(raw)
        bytes = [b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]] + b[8..<16]
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// From `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (either case).
    init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.map(\.count) == [8, 4, 4, 4, 12], let bytes = parseHex(parts.joined()) else { return nil }
        self.bytes = bytes
    }

    /// The 16 bytes as they are stored on disk.
    var onDisk: [UInt8] {
        [bytes[3], bytes[2], bytes[1], bytes[0], bytes[5], bytes[4], bytes[7], bytes[6]] + bytes[8..<16]
    }

    var description: String {
        let hex = hexString(bytes)
        let u = Array(hex.utf8)
        func part(_ r: Range<Int>) -> String { String(decoding: u[r], as: UTF8.self) }
        return [part(0..<8), part(8..<12), part(12..<16), part(16..<20), part(20..<32)].joined(separator: "-")
    }
}

/// Why an image that carries a GPT signature is not a usable GPT.
struct GPTError: Error, Equatable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension GPTTable {
    /// Limits on what an image may claim. Anything beyond is refused before it is read.
    static let maximumEntrySize = 4096
    static let maximumEntryCount: UInt32 = 4096
    static let maximumEntryArrayBytes = 1 << 20

    /// Looks for a GPT header at LBA 1 for 512- and 4096-byte sectors.
    /// - Returns: nil if there is no "EFI PART" signature at either place (not a partitioned image).
    /// - Throws: `GPTError` if there is a signature but the table is not valid.
    static func probe(_ image: ImageReader) throws -> GPTTable? {
        for sectorSize in [512, 4096] {
            guard image.contains(offset: UInt64(sectorSize), count: 8) else { continue }
            let signature = try image.read(offset: UInt64(sectorSize), count: 8)
            if signature == Array("EFI PART".utf8) {
                return try parse(image, sectorSize: sectorSize)
            }
        }
        return nil
    }

    static func parse(_ image: ImageReader, sectorSize: Int) throws -> GPTTable {
        let sector = UInt64(sectorSize)
        let totalSectors = image.size / sector
        guard totalSectors >= 3 else { throw GPTError("the image is too small for a GPT") }

        // Protective MBR: boot signature and one partition of type 0xEE.
        let mbr = try image.read(offset: 0, count: 512)
        guard mbr[510] == 0x55, mbr[511] == 0xAA else { throw GPTError("no protective MBR (boot signature missing)") }
        guard (0..<4).contains(where: { mbr[446 + 16 * $0 + 4] == 0xEE }) else {
            throw GPTError("the MBR has no protective (type 0xEE) partition")
        }

        let header = try image.read(offset: sector, count: sectorSize)
        let revision: UInt32 = header.littleEndian(8)
        guard revision >> 16 == 1 else { throw GPTError("GPT revision 0x\(String(revision, radix: 16)) is not 1.x") }
        let headerSize = Int(header.littleEndian(12, as: UInt32.self))
        guard headerSize >= 92, headerSize <= sectorSize else {
            throw GPTError("GPT header size \(headerSize) is not between 92 and the sector size \(sectorSize)")
        }
        var zeroed = Array(header[0..<headerSize])
        for i in 16..<20 { zeroed[i] = 0 }
        let storedCRC: UInt32 = header.littleEndian(16)
        guard CRC32.checksum(zeroed) == storedCRC else { throw GPTError("GPT header CRC32 mismatch") }
        guard header.allZero(20..<24) else { throw GPTError("GPT header reserved field is not zero") }

        let myLBA: UInt64 = header.littleEndian(24)
        let alternateLBA: UInt64 = header.littleEndian(32)
        let firstUsable: UInt64 = header.littleEndian(40)
        let lastUsable: UInt64 = header.littleEndian(48)
        let diskGUID = GUID(onDisk: header[56..<72])
        let entriesLBA: UInt64 = header.littleEndian(72)
        let entryCount: UInt32 = header.littleEndian(80)
        let entrySize = Int(header.littleEndian(84, as: UInt32.self))
        let entriesCRC: UInt32 = header.littleEndian(88)

        guard myLBA == 1 else { throw GPTError("the primary GPT header says it is at LBA \(myLBA), not 1") }
        guard alternateLBA > 1, alternateLBA < totalSectors else {
            throw GPTError("the backup GPT header LBA \(alternateLBA) is outside the image (\(totalSectors) sectors): truncated?")
        }
        guard firstUsable <= lastUsable, lastUsable < totalSectors, firstUsable > 1 else {
            throw GPTError("usable LBAs \(firstUsable)…\(lastUsable) do not fit the image (\(totalSectors) sectors)")
        }
        guard entrySize >= 128, entrySize <= maximumEntrySize, entrySize & (entrySize - 1) == 0 else {
            throw GPTError("partition entry size \(entrySize) is not 128 × 2^n (at most \(maximumEntrySize))")
        }
        guard entryCount >= 1, entryCount <= maximumEntryCount else {
            throw GPTError("partition entry count \(entryCount) is not between 1 and \(maximumEntryCount)")
        }
        let arrayBytes = Int(entryCount) * entrySize
        guard arrayBytes <= maximumEntryArrayBytes else {
            throw GPTError("the partition entry array (\(arrayBytes) bytes) is larger than \(maximumEntryArrayBytes) bytes")
        }
        let arraySectors = (UInt64(arrayBytes) + sector - 1) / sector
        guard entriesLBA >= 2, entriesLBA.addingReportingOverflow(arraySectors).partialValue <= firstUsable,
              entriesLBA < totalSectors, !entriesLBA.addingReportingOverflow(arraySectors).overflow else {
            throw GPTError("the partition entry array at LBA \(entriesLBA) overlaps the header or the usable area")
        }
        let arrayOffset = entriesLBA.multipliedReportingOverflow(by: sector)
        guard !arrayOffset.overflow, image.contains(offset: arrayOffset.partialValue, count: UInt64(arrayBytes)) else {
            throw GPTError("the partition entry array lies beyond the end of the image")
        }
        let array = try image.read(offset: arrayOffset.partialValue, count: arrayBytes)
        guard CRC32.checksum(array) == entriesCRC else { throw GPTError("partition entry array CRC32 mismatch") }

        var partitions: [GPTPartition] = []
        for index in 0..<Int(entryCount) {
            let base = index * entrySize
            let type = GUID(onDisk: array[base..<base + 16])
            if type == .zero { continue }
            let first: UInt64 = array.littleEndian(base + 32)
            let last: UInt64 = array.littleEndian(base + 40)
            guard first <= last, first >= firstUsable, last <= lastUsable else {
                throw GPTError("partition \(index + 1): LBAs \(first)…\(last) are outside the usable area \(firstUsable)…\(lastUsable)")
            }
            // No overflow: last < totalSectors, and totalSectors × sector = at most the image size.
            let offset = first * sector
            let size = (last - first + 1) * sector
            guard image.contains(offset: offset, count: size) else {
                throw GPTError("partition \(index + 1) lies beyond the end of the image")
            }
            partitions.append(GPTPartition(
                number: index + 1, type: type, uuid: GUID(onDisk: array[base + 16..<base + 32]),
                firstLBA: first, lastLBA: last, attributes: array.littleEndian(base + 48),
                label: decodeLabel(array[base + 56..<base + min(128, entrySize)]), offset: offset, size: size))
        }
        let sorted = partitions.sorted { $0.firstLBA < $1.firstLBA }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.firstLBA <= a.lastLBA {
            throw GPTError("partitions \(a.number) and \(b.number) overlap")
        }
        return GPTTable(sectorSize: sectorSize, diskGUID: diskGUID, firstUsableLBA: firstUsable,
                        lastUsableLBA: lastUsable, partitions: partitions)
    }

    /// The UTF-16LE name, up to the first NUL; unpaired surrogates become U+FFFD.
    private static func decodeLabel(_ raw: ArraySlice<UInt8>) -> String {
        var units: [UInt16] = []
        var i = raw.startIndex
        while i + 1 < raw.endIndex {
            let unit = UInt16(raw[i]) | UInt16(raw[i + 1]) << 8
            if unit == 0 { break }
            units.append(unit)
            i += 2
        }
        return String(decoding: units, as: UTF16.self)
    }
}
