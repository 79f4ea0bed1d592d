import Foundation
import Testing
import Glibc
@testable import EarlyextCore

/// Runs bash with `Tests/Verity/fixtures.sh` sourced, in `directory`. Throws if it fails.
@discardableResult
func fixtureShell(_ script: String, in directory: String) throws -> String {
    let result = try Sandbox.capture("/bin/bash", ["-c", "set -euo pipefail; source '\(Sandbox.packageRoot)/Tests/Verity/fixtures.sh'; cd '\(directory)'; " + script])
    guard result.status == 0 else {
        throw FixtureError(message: "fixture script failed (\(result.status)): \(script)\n\(result.stderr)")
    }
    return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

struct FixtureError: Error, CustomStringConvertible { var message: String; var description: String { message } }

/// What every verity test starts from, built once per test run: a fresh CA, signer and rogue
/// certificate, and signed DDIs whose parts are kept (data, hash tree, signature, JSON).
final class VerityFixtures: @unchecked Sendable {
    let dir: String
    let pki: String
    /// A signed usr DDI (1 MiB of payload: a tree with three levels), and its parts.
    let usrDDI: String
    let usrRootHash: String
    /// A signed root DDI (the layout `systemd-repart --make-ddi=sysext` builds).
    let rootDDI: String
    let rootRootHash: String

    static let shared: VerityFixtures = {
        do { return try VerityFixtures() } catch { fatalError("verity fixtures: \(error)") }
    }()

    private init() throws {
        var template = Array("/tmp/earlyext-verity-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { throw Errno.current }
        dir = String(cString: made)
        fixtureRoot = dir
        atexit { if let root = fixtureRoot { removeTree(root) } }
        pki = dir + "/pki"
        try fixtureShell("make_pki pki", in: dir)
        usrRootHash = try fixtureShell("build_signed_ddi . usr x86-64 usr pki 1", in: dir)
        usrDDI = dir + "/usr.raw"
        rootRootHash = try fixtureShell("build_signed_ddi . root x86-64 root pki", in: dir)
        rootDDI = dir + "/root.raw"
    }

    func part(_ ddi: String, _ name: String) -> String { dir + "/\(ddi).work/\(name)" }

    /// PEM text of a certificate made for this run.
    func certificate(_ name: String) throws -> String {
        try String(contentsOfFile: "\(pki)/\(name).crt", encoding: .utf8)
    }

    func trust(_ names: [String]) throws -> TrustStore {
        TrustStore.fromPEM(try names.map { ("\($0).crt", try certificate($0)) })
    }
}

nonisolated(unsafe) private var fixtureRoot: String?

/// A scratch directory for one test case, with byte-level helpers to damage images.
final class VerityWorkspace {
    let fixtures = VerityFixtures.shared
    let dir: String

    init() throws {
        var template = Array("/tmp/earlyext-vcase-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { throw Errno.current }
        dir = String(cString: made)
    }

    deinit { removeTree(dir) }

    func path(_ name: String) -> String { dir + "/" + name }

    @discardableResult
    func shell(_ script: String) throws -> String {
        try fixtureShell("F='\(fixtures.dir)'; PKI='\(fixtures.pki)'; " + script, in: dir)
    }

    /// Copies a file into the workspace under `name`.
    @discardableResult
    func copy(_ source: String, to name: String) throws -> String {
        try shell("cp --reflink=auto '\(source)' '\(name)'")
        return path(name)
    }

    func read(_ file: String, offset: UInt64, count: Int) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: file))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        return [UInt8](try handle.read(upToCount: count) ?? Data())
    }

    func write(_ file: String, offset: UInt64, _ bytes: [UInt8]) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: file))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(bytes))
    }

    /// Flips the bits of one byte.
    func flip(_ file: String, at offset: UInt64) throws {
        let byte = try read(file, offset: offset, count: 1)[0]
        try write(file, offset: offset, [~byte])
    }

    /// The partitions of a DDI, as sfdisk sees them: (start, size) in bytes, by number.
    func partitions(_ file: String) throws -> [Int: (offset: UInt64, size: UInt64)] {
        let json = try shell("sfdisk -J '\(file)'")
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let table = object["partitiontable"] as! [String: Any]
        var result: [Int: (UInt64, UInt64)] = [:]
        for (index, entry) in (table["partitions"] as! [[String: Any]]).enumerated() {
            let start = (entry["start"] as! NSNumber).uint64Value
            let size = (entry["size"] as! NSNumber).uint64Value
            result[index + 1] = (start * 512, size * 512)
        }
        return result
    }

    /// Replaces the contents of DDI partition `number` with `bytes`, NUL-padded to its size.
    func fillPartition(_ file: String, _ number: Int, _ bytes: [UInt8]) throws {
        let part = try #require(try partitions(file)[number])
        precondition(UInt64(bytes.count) <= part.size)
        try write(file, offset: part.offset, bytes + [UInt8](repeating: 0, count: Int(part.size) - bytes.count))
    }

    /// Edits the primary GPT header (LBA 1, 512-byte sectors) and, with `fixCRC`, recomputes the
    /// header CRC so that the edit itself is what the parser sees.
    func editGPTHeader(_ file: String, fixCRC: Bool = true, _ edit: (inout [UInt8]) -> Void) throws {
        var header = try read(file, offset: 512, count: 92)
        edit(&header)
        if fixCRC {
            for i in 16..<20 { header[i] = 0 }
            let crc = CRC32.checksum(header)
            for i in 0..<4 { header[16 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        }
        try write(file, offset: 512, header)
    }

    /// Edits entry `index` (0-based) of the primary partition array and fixes both CRCs.
    func editGPTEntry(_ file: String, _ index: Int, _ edit: (inout [UInt8]) -> Void) throws {
        let header = try read(file, offset: 512, count: 92)
        let arrayLBA = header.littleEndian(72, as: UInt64.self)
        let count = Int(header.littleEndian(80, as: UInt32.self))
        let size = Int(header.littleEndian(84, as: UInt32.self))
        var array = try read(file, offset: arrayLBA * 512, count: count * size)
        var entry = Array(array[index * size..<(index + 1) * size])
        edit(&entry)
        array.replaceSubrange(index * size..<(index + 1) * size, with: entry)
        try write(file, offset: arrayLBA * 512, array)
        let crc = CRC32.checksum(array)
        try editGPTHeader(file) { h in
            for i in 0..<4 { h[88 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        }
    }
}

extension Array where Element == UInt8 {
    mutating func setLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}
