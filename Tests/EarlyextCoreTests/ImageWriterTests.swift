import CShim
import Glibc
import Testing
@testable import EarlyextCore

/// The fetcher's image writer: chunks hashed on one thread and written on another, whole
/// aligned chunks through O_DIRECT. Real files in /tmp.
@Suite struct ImageWriterTests {
    static let mib = 1 << 20

    /// A case: the body's length, the size of the pieces it arrives in, and how many bytes a
    /// partial file already held (resumed).
    struct Case: CustomTestStringConvertible, Sendable {
        var total: Int
        var piece: Int
        var resumedFrom = 0
        var testDescription: String { "\(total) bytes in pieces of \(piece), resumed at \(resumedFrom)" }
    }

    static let cases: [Case] = [
        Case(total: 0, piece: 1),
        Case(total: 1, piece: 1),
        Case(total: 4096, piece: 4096),
        Case(total: mib, piece: mib),
        Case(total: mib, piece: 1000),
        Case(total: mib + 1, piece: 65536),
        Case(total: 3 * mib, piece: 3 * mib),                  // one piece, three chunks
        Case(total: 3 * mib + 8192, piece: 262_144),           // an aligned short last chunk
        Case(total: 5 * mib + 77, piece: 16_385),              // an unaligned last chunk
        Case(total: 20 * mib + 3, piece: 262_144),             // more chunks than may be in flight
        Case(total: 3 * mib, piece: 100_000, resumedFrom: 5000),        // unaligned resume
        Case(total: 3 * mib, piece: 100_000, resumedFrom: mib),         // resume on a boundary
        Case(total: 4 * mib, piece: 7, resumedFrom: 2 * mib + 4096),    // tiny pieces
    ]

    /// The chunks `ImageWriter` should write with O_DIRECT: from each 1 MiB boundary (or the
    /// resume point) to the next, those whose offset and length are multiples of 4096.
    static func expectedDirectChunks(_ c: Case) -> Int {
        var count = 0
        var start = c.resumedFrom
        while start < c.total {
            let end = min(c.total, (start / mib + 1) * mib)
            if start % 4096 == 0, (end - start) % 4096 == 0 { count += 1 }
            start = end
        }
        return count
    }

    /// Whether the file system under `directory` takes O_DIRECT at all.
    static func supportsDirect(_ directory: String) -> Bool {
        (try? openPath(directory + "/.direct-probe", O_WRONLY | O_CREAT | ee_O_DIRECT, mode: 0o600)) != nil
    }

    /// Appends `bytes` as libcurl would hand them over: `piece` bytes at a time.
    static func appendInPieces(_ bytes: ArraySlice<UInt8>, piece: Int, to writer: ImageWriter) throws {
        var at = bytes.startIndex
        while at < bytes.endIndex {
            let end = min(bytes.endIndex, at + piece)
            try bytes[at..<end].withUnsafeBytes { try writer.append($0) }
            at = end
        }
    }

    /// Writes `body` as a download would: the resumed prefix first (as an earlier attempt left
    /// it), then the rest through an ImageWriter in `piece`-sized pieces.
    static func download(_ body: [UInt8], _ c: Case, into path: String, direct: Bool = true) throws -> (digest: String, directChunks: Int) {
        try writeBytes(path, Array(body[0..<c.resumedFrom]))
        let file = OwnedDescriptor(try openPath(path, O_RDWR))
        let hasher = SHA256()
        hasher.update(Array(body[0..<c.resumedFrom]))
        let writer = ImageWriter(file: file, offset: Int64(c.resumedFrom), hasher: hasher, direct: direct)
        try appendInPieces(body[c.resumedFrom...], piece: c.piece, to: writer)
        let digest = try writer.hexDigest()
        #expect(writer.offset == Int64(c.total))
        return (digest, writer.directChunks)
    }

    @Test(arguments: cases)
    func everyByteIsWrittenAndHashedOnce(_ c: Case) throws {
        let fixture = try Fixture()
        let body = randomBytes(c.total)
        let (digest, directChunks) = try Self.download(body, c, into: fixture.path("img.raw"))
        #expect(readBytes(fixture.path("img.raw")) == body)
        #expect(digest == SHA256.hexDigest(of: body))
        #expect(directChunks == (Self.supportsDirect(fixture.root) ? Self.expectedDirectChunks(c) : 0))
    }

    static var temporaryIsExt4: Bool {
        var statistics = statfs()
        return statfs("/tmp", &statistics) == 0 && statistics.f_type == 0xEF53
    }

    /// The expectations above fall back to "no direct chunks" where O_DIRECT is refused; on an
    /// ext4 /tmp (the machines the tests run on) it must not be.
    @Test(.enabled(if: temporaryIsExt4, "/tmp is not ext4"))
    func ext4TakesDirectWrites() throws {
        let fixture = try Fixture()
        #expect(Self.supportsDirect(fixture.root))
        let c = Case(total: 4 * Self.mib, piece: 65536)
        let (_, directChunks) = try Self.download(randomBytes(c.total), c, into: fixture.path("img.raw"))
        #expect(directChunks == 4)
    }

    @Test func withoutDirectEveryChunkIsBuffered() throws {
        let fixture = try Fixture()
        let c = Case(total: 3 * Self.mib + 5, piece: 300_000)
        let body = randomBytes(c.total)
        let (digest, directChunks) = try Self.download(body, c, into: fixture.path("img.raw"), direct: false)
        #expect(readBytes(fixture.path("img.raw")) == body)
        #expect(digest == SHA256.hexDigest(of: body))
        #expect(directChunks == 0)
    }

    @Test func restartForgetsTheFirstBytes() throws {
        let fixture = try Fixture()
        let path = fixture.path("img.raw")
        try writeBytes(path, [])
        let writer = ImageWriter(file: OwnedDescriptor(try openPath(path, O_RDWR)), offset: 0, hasher: SHA256())
        let first = randomBytes(5 * Self.mib + 11)
        try first.withUnsafeBytes { try writer.append($0) }
        try writer.restart()
        #expect(writer.offset == 0)
        let second = randomBytes(2 * Self.mib + 3)
        try second.withUnsafeBytes { try writer.append($0) }
        #expect(try writer.hexDigest() == SHA256.hexDigest(of: second))
        #expect(readBytes(path) == second)
    }

    /// Appends `body` in `piece`-sized pieces, then finishes; the first error thrown, if any.
    static func appendAll(_ body: [UInt8], piece: Int, to writer: ImageWriter) -> Errno? {
        do {
            try appendInPieces(body[...], piece: piece, to: writer)
            try writer.finish()
            return nil
        } catch {
            return error as? Errno
        }
    }

    @Test(arguments: [false, true])
    func aWriteErrorIsThrownAndKept(direct: Bool) throws {
        let fixture = try Fixture()
        let path = fixture.path("img.raw")
        try writeBytes(path, [])
        // Read-only: every pwrite fails with EBADF, and no O_DIRECT descriptor is opened for
        // writing behind the descriptor's back (the reopen would pass: the inode is 0644).
        let writer = ImageWriter(file: OwnedDescriptor(try openPath(path, O_RDONLY)), offset: 0, hasher: SHA256(), direct: direct)
        #expect(Self.appendAll(randomBytes(40 * Self.mib), piece: 65536, to: writer) == Errno(rawValue: EBADF))
        #expect(throws: Errno(rawValue: EBADF)) { try writer.finish() }
        #expect(readBytes(path) == [])
        #expect(writer.directChunks == 0)
    }

    /// A full file system in the middle of the body: ENOSPC, and the file holds an exact prefix
    /// of the body (no later chunk written after the failed one), with and without O_DIRECT.
    @Test(.enabled(if: getuid() == 0, "needs root: a small tmpfs in a private mount namespace (skipped when not root)"),
          arguments: [false, true])
    func aFullFileSystemLeavesAPrefixOfTheBody(direct: Bool) throws {
        let fixture = try Fixture()
        let mountPoint = fixture.path("small")
        try makeDirectories(mountPoint)
        let body = randomBytes(40 * Self.mib)
        final class Box: @unchecked Sendable { var thrown: Errno?; var written: [UInt8]?; var problem: String? }
        let box = Box()
        let setup = withPrivateTmpfs(at: mountPoint, size: "5m") {
            do {
                let path = mountPoint + "/img.raw"
                try writeBytes(path, [])
                let writer = ImageWriter(file: OwnedDescriptor(try openPath(path, O_RDWR)), offset: 0, hasher: SHA256(), direct: direct)
                box.thrown = Self.appendAll(body, piece: 100_000, to: writer)
                box.written = readBytes(path)
            } catch {
                box.problem = "\(error)"
            }
        }
        #expect(setup == nil && box.problem == nil, "\(setup ?? "") \(box.problem ?? "")")
        #expect(box.thrown == .noSpace)
        let written = try #require(box.written)
        #expect(written.count >= 4 * Self.mib && written.count <= 5 * Self.mib, "\(written.count) bytes")
        #expect(written[...] == body[0..<written.count], "the file is a prefix of the body")
    }

    /// `restart()` while chunks are queued and in the threads' hands: nothing of the first body
    /// reaches the file or the digest. Random lengths and pieces, so that the restart lands at
    /// every stage of a chunk.
    @Test func restartWhileChunksAreInFlight() throws {
        let fixture = try Fixture()
        let path = fixture.path("img.raw")
        let pool = randomBytes(24 * Self.mib)
        for round in 0..<30 {
            try writeBytes(path, [])
            let writer = ImageWriter(file: OwnedDescriptor(try openPath(path, O_RDWR)), offset: 0, hasher: SHA256(), direct: round % 2 == 0)
            let first = Array(pool[0..<Int.random(in: 1...pool.count)])
            let piece = Int.random(in: 1000...(3 * Self.mib))
            try Self.appendInPieces(first[...], piece: piece, to: writer)
            try writer.restart()
            let start = Int.random(in: 0..<pool.count)
            let second = Array(pool[start..<min(pool.count, start + Int.random(in: 1...(6 * Self.mib)))])
            try second.withUnsafeBytes { try writer.append($0) }
            #expect(try writer.hexDigest() == SHA256.hexDigest(of: second), "round \(round)")
            #expect(readBytes(path) == second, "round \(round)")
        }
    }

    /// Given up without `finish()` (a failed download): the threads stop, the descriptors close,
    /// and what reached the file is still a prefix of the body.
    @Test(arguments: [false, true])
    func theThreadsAndDescriptorsEndWithTheWriter(finished: Bool) throws {
        let fixture = try Fixture()
        let path = fixture.path("img.raw")
        try writeBytes(path, [])
        func descriptorsOnFile() -> Int {
            listDirectory("/proc/self/fd").filter { (try? readLinkAt(AT_FDCWD, "/proc/self/fd/" + $0)) == path }.count
        }
        let body = randomBytes(20 * Self.mib)
        weak var gone: ImageWriter?
        do {
            let writer = ImageWriter(file: OwnedDescriptor(try openPath(path, O_RDWR)), offset: 0, hasher: SHA256())
            gone = writer
            try body.withUnsafeBytes { try writer.append($0) }
            #expect(descriptorsOnFile() == (Self.supportsDirect(fixture.root) ? 2 : 1))
            if finished { try writer.finish() }
        }
        #expect(gone == nil)
        #expect(descriptorsOnFile() == 0)
        let written = readBytes(path) ?? []
        #expect(written[...] == body[0..<written.count])
        if finished { #expect(written == body) }
    }
}
