import CCrypto
import Glibc

/// A dm-verity hash device as `veritysetup format` and `systemd-repart` write it: a 512-byte
/// superblock at the start, then the hash tree, top level first, starting at the next hash block.
/// (libcryptsetup's on-disk format 1; the kernel's hash type 1: digest = H(salt ‖ block).)
struct VerityParameters: Equatable {
    var hashType: UInt32
    var uuid: GUID
    /// "sha256" or "sha512".
    var algorithm: String
    var dataBlockSize: Int
    var hashBlockSize: Int
    var dataBlocks: UInt64
    var salt: [UInt8]

    static let superblockSize = 512
    static let supportedAlgorithms = ["sha256": 32, "sha512": 64]

    /// Bytes of one digest.
    var digestSize: Int { Self.supportedAlgorithms[algorithm] ?? 0 }
    /// Bytes each digest occupies in a hash block (the next power of two).
    var digestStride: Int {
        var stride = 1
        while stride < digestSize { stride <<= 1 }
        return stride
    }
    /// log2 of the digests per hash block.
    var hashesPerBlockBits: Int { (hashBlockSize / digestStride).trailingZeroBitCount }

    /// Bytes of data the tree covers (and the size of the dm-verity device).
    var dataBytes: UInt64 { dataBlocks * UInt64(dataBlockSize) }

    /// The levels of the tree, bottom (level 0: digests of data blocks) first: the hash block
    /// where each starts (counted from the start of the hash device) and how many blocks it has.
    var levels: [(firstBlock: UInt64, blocks: UInt64)] {
        let bits = hashesPerBlockBits
        var count = 0
        while bits * count < 64, (dataBlocks - 1) >> UInt64(bits * count) != 0 { count += 1 }
        var sizes = [UInt64](repeating: 0, count: count)
        var starts = [UInt64](repeating: 0, count: count)
        var position = firstHashBlock
        for level in stride(from: count - 1, through: 0, by: -1) {
            starts[level] = position
            let shift = UInt64((level + 1) * bits)
            sizes[level] = shift >= 64 ? 1 : (dataBlocks + (1 << shift) - 1) >> shift
            position += sizes[level]
        }
        return (0..<count).map { (starts[$0], sizes[$0]) }
    }

    /// The hash block where the tree starts: the first block after the superblock.
    var firstHashBlock: UInt64 { UInt64((Self.superblockSize + hashBlockSize - 1) / hashBlockSize) }

    /// Bytes of the hash device the superblock and tree occupy.
    var hashDeviceBytes: UInt64 {
        let blocks = levels.map(\.blocks).reduce(firstHashBlock, +)
        return blocks * UInt64(hashBlockSize)
    }

    /// Parses and checks a superblock. Every field is bounded: block sizes are powers of two
    /// from 512 to 64 KiB, the salt at most 256 bytes, the data at most 2^63 bytes.
    static func parse(_ sb: [UInt8]) throws(VerityError) -> VerityParameters {
        guard sb.count >= superblockSize else { throw VerityError("verity superblock is truncated") }
        guard sb[0..<8].elementsEqual(Array("verity".utf8) + [0, 0]) else {
            throw VerityError("no verity superblock (signature \"verity\" missing)")
        }
        let version: UInt32 = sb.littleEndian(8)
        guard version == 1 else { throw VerityError("verity superblock version \(version) is not 1") }
        let hashType: UInt32 = sb.littleEndian(12)
        guard hashType == 1 else { throw VerityError("verity hash type \(hashType) is not supported (only 1, the normal format)") }
        let nameBytes = sb[32..<64].prefix { $0 != 0 }
        let algorithm = String(decoding: nameBytes, as: UTF8.self).lowercased()
        guard supportedAlgorithms[algorithm] != nil else {
            throw VerityError("verity hash algorithm '\(algorithm)' is not supported (sha256, sha512)")
        }
        let dataBlockSize = Int(sb.littleEndian(64, as: UInt32.self))
        let hashBlockSize = Int(sb.littleEndian(68, as: UInt32.self))
        for (what, size) in [("data", dataBlockSize), ("hash", hashBlockSize)] {
            guard size >= 512, size <= 65536, size & (size - 1) == 0 else {
                throw VerityError("verity \(what) block size \(size) is not a power of two from 512 to 65536")
            }
        }
        let dataBlocks: UInt64 = sb.littleEndian(72)
        let (bytes, overflow) = dataBlocks.multipliedReportingOverflow(by: UInt64(dataBlockSize))
        guard dataBlocks >= 1, !overflow, bytes <= UInt64(Int64.max) else {
            throw VerityError("verity data block count \(dataBlocks) is out of range")
        }
        let saltSize = Int(sb.littleEndian(80, as: UInt16.self))
        guard saltSize <= 256 else { throw VerityError("verity salt size \(saltSize) is larger than 256") }
        let parameters = VerityParameters(
            hashType: hashType, uuid: GUID(bytes: Array(sb[16..<32])), algorithm: algorithm,
            dataBlockSize: dataBlockSize, hashBlockSize: hashBlockSize, dataBlocks: dataBlocks,
            salt: Array(sb[88..<88 + saltSize]))
        guard parameters.hashBlockSize / parameters.digestStride >= 2 else {
            throw VerityError("verity hash block size \(hashBlockSize) holds fewer than two \(algorithm) digests")
        }
        return parameters
    }
}

/// A problem with verity data. `mismatch` says the data or tree does not hash to the root hash
/// (as opposed to the verity data being malformed).
struct VerityError: Error, Equatable, CustomStringConvertible {
    var description: String
    var mismatch = false
    init(_ description: String, mismatch: Bool = false) {
        self.description = description
        self.mismatch = mismatch
    }
}

/// Where the data and the hash tree of one verity-protected filesystem are.
struct VerityLayout {
    var data: ImageRegion
    /// Starts with the superblock.
    var hash: ImageRegion
}

/// A byte range of an open image (a partition, or a whole file).
struct ImageRegion {
    var reader: ImageReader
    var offset: UInt64
    var size: UInt64

    static func whole(_ reader: ImageReader) -> ImageRegion { ImageRegion(reader: reader, offset: 0, size: reader.size) }

    /// Reads `count` bytes at `offset` inside the region; the range must lie inside it.
    func read(at offset: UInt64, count: Int) throws -> [UInt8] {
        guard offset.addingReportingOverflow(UInt64(count)).partialValue <= size,
              !offset.addingReportingOverflow(UInt64(count)).overflow else {
            throw ImageFault.outOfBounds(offset: offset, count: UInt64(count), size: size)
        }
        return try reader.read(offset: self.offset + offset, count: count)
    }

    /// posix_fadvise(WILLNEED): asks the kernel to read ahead (a hint; errors are ignored).
    func prefetch(at offset: UInt64, count: UInt64) {
        guard offset < size else { return }
        _ = posix_fadvise(reader.descriptor.rawValue, off_t(self.offset + offset), off_t(min(count, size - offset)), POSIX_FADV_WILLNEED)
    }

    func readInto(_ buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset.addingReportingOverflow(UInt64(buffer.count)).partialValue <= size,
              !offset.addingReportingOverflow(UInt64(buffer.count)).overflow else {
            throw ImageFault.outOfBounds(offset: offset, count: UInt64(buffer.count), size: size)
        }
        try reader.readInto(buffer, offset: self.offset + offset)
    }
}

extension VerityLayout {
    /// Reads and checks the superblock, and checks that the data and the tree fit their regions.
    func parameters() throws -> VerityParameters {
        guard hash.size >= UInt64(VerityParameters.superblockSize) else {
            throw VerityError("the verity hash data is smaller than a superblock")
        }
        let parameters = try VerityParameters.parse(try hash.read(at: 0, count: VerityParameters.superblockSize))
        guard parameters.dataBytes <= data.size else {
            throw VerityError("verity covers \(parameters.dataBytes) bytes of data, but the data is only \(data.size) bytes")
        }
        guard parameters.hashDeviceBytes <= hash.size else {
            throw VerityError("the verity hash tree needs \(parameters.hashDeviceBytes) bytes, but the hash data is only \(hash.size) bytes")
        }
        return parameters
    }

    /// Checks that the top of the tree hashes to `rootHash`: one block read, so it is cheap
    /// enough to run before every activation (the kernel checks the rest as blocks are read).
    func checkTop(_ parameters: VerityParameters, rootHash: [UInt8]) throws {
        guard rootHash.count == parameters.digestSize else {
            throw VerityError("the root hash has \(rootHash.count) bytes, \(parameters.algorithm) digests have \(parameters.digestSize)", mismatch: true)
        }
        let hasher = SaltedHasher(parameters)
        let top: [UInt8]
        if let last = parameters.levels.last {
            top = try hash.read(at: last.firstBlock * UInt64(parameters.hashBlockSize), count: parameters.hashBlockSize)
        } else {
            top = try data.read(at: 0, count: parameters.dataBlockSize)
        }
        let digest = top.withUnsafeBytes { hasher.digest($0) }
        guard digest == rootHash else {
            throw VerityError("the top of the hash tree hashes to \(hexString(digest)), not to the root hash \(hexString(rootHash))", mismatch: true)
        }
    }

    /// Verifies every data block and every hash block against `rootHash`, bottom up, as
    /// `veritysetup verify` does, in user space: no device-mapper needed. Memory is bounded
    /// (a few MiB) whatever the image size. Also checks that unused digest slots are zero.
    func verifyAll(_ parameters: VerityParameters, rootHash: [UInt8]) throws {
        try checkTop(parameters, rootHash: rootHash)
        let levels = parameters.levels
        let hashBlock = UInt64(parameters.hashBlockSize)
        for (index, level) in levels.enumerated() {
            // The source of level i is the data (i = 0) or level i-1.
            let source: ImageRegion
            let sourceOffset: UInt64
            let sourceBlockSize: Int
            let sourceBlocks: UInt64
            if index == 0 {
                (source, sourceOffset, sourceBlockSize, sourceBlocks) = (data, 0, parameters.dataBlockSize, parameters.dataBlocks)
            } else {
                let below = levels[index - 1]
                (source, sourceOffset, sourceBlockSize, sourceBlocks) = (hash, below.firstBlock * hashBlock, parameters.hashBlockSize, below.blocks)
            }
            try verifyLevel(parameters, level: index, source: source, sourceOffset: sourceOffset,
                            sourceBlockSize: sourceBlockSize, sourceBlocks: sourceBlocks,
                            targetOffset: level.firstBlock * hashBlock, targetBlocks: level.blocks)
        }
    }

    /// Hashes `sourceBlocks` blocks and compares each digest with its slot in the target level.
    private func verifyLevel(_ p: VerityParameters, level: Int, source: ImageRegion,
                             sourceOffset: UInt64, sourceBlockSize: Int, sourceBlocks: UInt64,
                             targetOffset: UInt64, targetBlocks: UInt64) throws {
        let perBlock = UInt64(1) << UInt64(p.hashesPerBlockBits)
        // Work in chunks of whole target blocks, about 4 MiB of source at a time.
        let targetBlocksPerChunk = max(1, UInt64(4 << 20) / (perBlock * UInt64(sourceBlockSize)))
        let sourceBlocksPerChunk = targetBlocksPerChunk * perBlock
        var sourceBuffer = [UInt8](repeating: 0, count: Int(sourceBlocksPerChunk) * sourceBlockSize)
        var targetBuffer = [UInt8](repeating: 0, count: Int(targetBlocksPerChunk) * p.hashBlockSize)
        var first: UInt64 = 0
        while first < sourceBlocks {
            let count = min(sourceBlocksPerChunk, sourceBlocks - first)
            let targetFirst = first / perBlock
            let targetCount = (count + perBlock - 1) / perBlock
            guard targetFirst + targetCount <= targetBlocks else { throw VerityError("verity hash tree is inconsistent") }
            try sourceBuffer.withUnsafeMutableBytes { raw in
                try source.readInto(UnsafeMutableRawBufferPointer(rebasing: raw[0..<Int(count) * sourceBlockSize]),
                                    at: sourceOffset + first * UInt64(sourceBlockSize))
            }
            try targetBuffer.withUnsafeMutableBytes { raw in
                try hash.readInto(UnsafeMutableRawBufferPointer(rebasing: raw[0..<Int(targetCount) * p.hashBlockSize]),
                                  at: targetOffset + targetFirst * UInt64(p.hashBlockSize))
            }
            // Start reading the next chunk while this one is hashed.
            let next = first + count
            if next < sourceBlocks {
                let nextCount = min(sourceBlocksPerChunk, sourceBlocks - next)
                source.prefetch(at: sourceOffset + next * UInt64(sourceBlockSize), count: nextCount * UInt64(sourceBlockSize))
            }
            let digests = sourceBuffer.withUnsafeBytes { src in
                hashBlocks(p, UnsafeRawBufferPointer(rebasing: src[0..<Int(count) * sourceBlockSize]), blockSize: sourceBlockSize)
            }
            try targetBuffer.withUnsafeBytes { dst in
                for i in 0..<Int(count) {
                    let slot = i * p.digestStride
                    guard dst[slot..<slot + p.digestSize].elementsEqual(digests[i * p.digestSize..<(i + 1) * p.digestSize]) else {
                        let what = level == 0 ? "data block \(first + UInt64(i))" : "hash block \(first + UInt64(i)) of level \(level - 1)"
                        throw VerityError("\(what) does not match its hash in the verity tree", mismatch: true)
                    }
                    if p.digestStride > p.digestSize,
                       !dst[slot + p.digestSize..<slot + p.digestStride].allSatisfy({ $0 == 0 }) {
                        throw VerityError("verity hash tree: padding after a digest is not zero", mismatch: true)
                    }
                }
                // Slots after the last digest of the level must be zero.
                if first + count == sourceBlocks {
                    let used = Int(count) * p.digestStride
                    guard dst[used..<Int(targetCount) * p.hashBlockSize].allSatisfy({ $0 == 0 }) else {
                        throw VerityError("verity hash tree: unused digest slots at level \(level) are not zero", mismatch: true)
                    }
                }
            }
            first += count
        }
    }
}

/// The digests of the blocks in `blocks`, concatenated: on up to four threads (one per CPU)
/// when there are enough blocks to be worth it, each with its own hasher.
private func hashBlocks(_ p: VerityParameters, _ blocks: UnsafeRawBufferPointer, blockSize: Int) -> [UInt8] {
    let count = blocks.count / blockSize
    let threads = count >= 256 ? max(1, min(4, sysconf(Int32(_SC_NPROCESSORS_ONLN)))) : 1
    let per = (count + threads - 1) / threads
    let slices = stride(from: 0, to: count, by: per).map { $0..<min($0 + per, count) }
    let parts = concurrentMap(slices, threads: threads) { range -> [UInt8] in
        let hasher = SaltedHasher(p)
        var out = [UInt8](repeating: 0, count: range.count * p.digestSize)
        var digest = [UInt8](repeating: 0, count: p.digestSize)
        for (n, i) in range.enumerated() {
            hasher.digest(UnsafeRawBufferPointer(rebasing: blocks[i * blockSize..<(i + 1) * blockSize]), into: &digest)
            out.replaceSubrange(n * p.digestSize..<(n + 1) * p.digestSize, with: digest)
        }
        return out
    }
    return parts.flatMap { $0 }
}

/// H(salt ‖ block) with the salt hashed once: each block starts from a copy of that state.
final class SaltedHasher {
    private let salted: OpaquePointer
    private let work: OpaquePointer
    let digestSize: Int

    init(_ parameters: VerityParameters) {
        guard let salted = EVP_MD_CTX_new(), let work = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        self.salted = salted
        self.work = work
        digestSize = parameters.digestSize
        let md = parameters.algorithm == "sha512" ? ee_evp_sha512() : ee_evp_sha256()
        guard EVP_DigestInit_ex(salted, md, nil) == 1 else { fatalError("EVP_DigestInit_ex failed") }
        parameters.salt.withUnsafeBytes { _ = EVP_DigestUpdate(salted, $0.baseAddress, $0.count) }
    }

    deinit {
        EVP_MD_CTX_free(salted)
        EVP_MD_CTX_free(work)
    }

    func digest(_ block: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        _ = EVP_MD_CTX_copy_ex(work, salted)
        _ = EVP_DigestUpdate(work, block.baseAddress, block.count)
        var length: UInt32 = 0
        out.withUnsafeMutableBufferPointer { _ = EVP_DigestFinal_ex(work, $0.baseAddress, &length) }
    }

    func digest(_ block: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: digestSize)
        digest(block, into: &out)
        return out
    }
}
