import Foundation
import Testing
@testable import EarlyextCore

/// The formats earlyext parses itself, each checked against the tool that writes it:
/// GPT against sfdisk, hash trees against veritysetup, the DPS types against util-linux's table.
@Suite struct VerityFormatTests {
    // MARK: Discoverable Partitions types

    /// util-linux's names for the architectures in our table.
    static let utilLinuxNames = [
        "x86-64": "x86-64", "x86": "x86", "arm64": "ARM-64", "arm": "ARM", "riscv64": "RISC-V-64", "riscv32": "RISC-V-32",
        "ppc64-le": "PPC64LE", "ppc64": "PPC64", "ppc": "PPC", "s390x": "S390X", "s390": "S390",
        "loongarch64": "LoongArch-64", "alpha": "Alpha", "arc": "ARC", "ia64": "IA-64", "mips-le": "MIPS-32 LE",
        "mips64-le": "MIPS-64 LE", "tilegx": "TILE-Gx",
    ]

    @Test func typesMatchUtilLinux() throws {
        let listing = try fixtureShell("sfdisk --label gpt -T", in: "/")
        var known: [String: String] = [:]
        for line in listing.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { continue }
            known[parts[1].trimmingCharacters(in: .whitespaces)] = parts[0].lowercased()
        }
        #expect(DiscoverableTypes.byArchitecture.count == Self.utilLinuxNames.count)
        for (architecture, types) in DiscoverableTypes.byArchitecture {
            let name = try #require(Self.utilLinuxNames[architecture])
            #expect(known["Linux root (\(name))"] == types.root.description, "\(architecture)")
            #expect(known["Linux /usr (\(name))"] == types.usr.description, "\(architecture)")
            #expect(known["Linux root verity (\(name))"] == types.rootVerity.description, "\(architecture)")
            #expect(known["Linux /usr verity (\(name))"] == types.usrVerity.description, "\(architecture)")
            #expect(known["Linux root verity sign. (\(name))"] == types.rootVeritySignature.description, "\(architecture)")
            #expect(known["Linux /usr verity sign. (\(name))"] == types.usrVeritySignature.description, "\(architecture)")
        }
        // Every architecture earlyext maps uname to, that systemd defines DPS types for, is there.
        for machine in ["x86_64", "aarch64", "i686", "armv7l", "riscv64", "ppc64le", "s390x", "loongarch64"] {
            let architecture = try #require(Host.systemdArchitecture(machine: machine))
            #expect(DiscoverableTypes.byArchitecture[architecture] != nil, "\(machine)")
        }
    }

    @Test func guidRoundTrip() throws {
        let text = "8484680c-9521-48c6-9c11-b0720656f69e"
        let guid = try #require(GUID(text))
        #expect(guid.description == text)
        #expect(GUID(onDisk: guid.onDisk[...]) == guid)
        #expect(guid.onDisk.prefix(4) == [0x0c, 0x68, 0x84, 0x84])
        #expect(GUID("8484680c-9521-48c6-9c11") == nil)
        #expect(GUID("8484680c-9521-48c6-9c11-b0720656f69x") == nil)
        #expect(GUID(text.uppercased()) == guid)
    }

    // MARK: GPT

    /// A layout with gaps, attributes, long names and non-DPS types: every field as sfdisk reads it.
    @Test func gptMatchesSfdisk() throws {
        let w = try VerityWorkspace()
        try w.shell("""
            truncate -s 64M g.img
            sfdisk -q g.img >/dev/null <<'EOF'
            label: gpt
            first-lba: 2048
            start=2048, size=100, type=8484680C-9521-48C6-9C11-B0720656F69E, name="usr-x86-64", attrs="GUID:60,63"
            start=4096, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=01234567-89AB-CDEF-0123-456789ABCDEF, name="a name with ümläuts"
            start=20000, size=1, type=77FF5F63-E7B6-4633-ACF4-1565B864C0E6
            EOF
            """)
        let table = try #require(try GPTTable.probe(ImageReader.open(w.path("g.img"))))
        let json = try w.shell("sfdisk -J g.img")
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let expected = (object["partitiontable"] as! [String: Any])
        #expect(table.sectorSize == 512)
        #expect(table.diskGUID.description == (expected["id"] as! String).lowercased())
        #expect(table.firstUsableLBA == (expected["firstlba"] as! NSNumber).uint64Value)
        #expect(table.lastUsableLBA == (expected["lastlba"] as! NSNumber).uint64Value)
        let partitions = expected["partitions"] as! [[String: Any]]
        #expect(table.partitions.count == partitions.count)
        for (mine, theirs) in zip(table.partitions, partitions) {
            let start = (theirs["start"] as! NSNumber).uint64Value
            let size = (theirs["size"] as! NSNumber).uint64Value
            #expect(mine.firstLBA == start)
            #expect(mine.lastLBA == start + size - 1)
            #expect(mine.offset == start * 512)
            #expect(mine.size == size * 512)
            #expect(mine.type.description == (theirs["type"] as! String).lowercased())
            #expect(mine.uuid.description == (theirs["uuid"] as! String).lowercased())
            #expect(mine.label == (theirs["name"] as? String ?? ""))
        }
        #expect(table.partitions[0].noAuto)
        #expect(table.partitions[0].attributes == UInt64(1) << 60 | UInt64(1) << 63)
        #expect(!table.partitions[1].noAuto)
        #expect(table.partitions.map(\.number) == [1, 2, 3])
    }

    /// A partition with the no-auto attribute is not a candidate, as in systemd.
    @Test func noAutoPartitionsAreIgnored() throws {
        let w = try VerityWorkspace()
        let f = w.fixtures
        try w.shell("make_ddi n.raw x86-64 usr '\(f.part("usr", "data.img"))'; sfdisk -q --part-attrs n.raw 1 63 >/dev/null")
        let verdict = verifyImage(path: w.path("n.raw"), policy: .any, trust: .empty, architecture: "x86-64", activate: false)
        #expect(verdict.outcome == .refuse(.malformed("a GPT image without a root or usr partition for x86-64")))
    }

    /// 4096-byte sectors: the header is at 4096. sfdisk 2.38 only writes them on such a device.
    @Test(.enabled(if: Sandbox.isRoot, "needs root: a loop device with 4096-byte sectors"))
    func gpt4096ByteSectors() throws {
        let w = try VerityWorkspace()
        try w.shell("""
            truncate -s 16M g.img
            dev=$(losetup --sector-size 4096 -f --show g.img)
            trap 'losetup -d $dev' EXIT
            printf 'label: gpt\\nstart=256, size=64, type=8484680C-9521-48C6-9C11-B0720656F69E\\n' | sfdisk -q $dev >/dev/null
            """)
        let table = try #require(try GPTTable.probe(ImageReader.open(w.path("g.img"))))
        #expect(table.sectorSize == 4096)
        #expect(table.partitions.count == 1)
        #expect(table.partitions[0].offset == 256 * 4096)
        #expect(table.partitions[0].size == 64 * 4096)
    }

    @Test func notAGPT() throws {
        let w = try VerityWorkspace()
        try w.shell("head -c 100000 /dev/zero > z.img; : > empty.img; printf x > one.img")
        for name in ["z.img", "empty.img", "one.img"] {
            #expect(try GPTTable.probe(ImageReader.open(w.path(name))) == nil, "\(name)")
        }
    }

    // MARK: dm-verity hash trees

    struct TreeCase: Sendable, CustomTestStringConvertible {
        var blocks: Int
        var dataBlockSize = 4096
        var hashBlockSize = 4096
        var hash = "sha256"
        var salt = ""
        var testDescription: String { "\(blocks)×\(dataBlockSize) hash \(hashBlockSize) \(hash) salt '\(salt)'" }
    }

    /// Geometries around the level boundaries (128 sha256 digests per 4 KiB block), small blocks,
    /// sha512, no salt and a full 256-byte salt: earlyext's tree walk accepts exactly what
    /// veritysetup wrote, and finds a flipped byte anywhere in the data or the tree.
    @Test(arguments: [
        TreeCase(blocks: 1), TreeCase(blocks: 2), TreeCase(blocks: 128), TreeCase(blocks: 129),
        TreeCase(blocks: 16384), TreeCase(blocks: 16385),
        TreeCase(blocks: 1000, dataBlockSize: 512, hashBlockSize: 512),
        TreeCase(blocks: 300, dataBlockSize: 1024, hashBlockSize: 4096),
        TreeCase(blocks: 300, hash: "sha512"),
        TreeCase(blocks: 70, hashBlockSize: 1024, hash: "sha512"),
        TreeCase(blocks: 200, salt: "-"),
        TreeCase(blocks: 200, salt: String(repeating: "a5", count: 256)),
    ])
    func treesMatchVeritysetup(_ row: TreeCase) throws {
        let w = try VerityWorkspace()
        let salt = row.salt.isEmpty ? "" : "--salt \(row.salt)"
        let root = try w.shell("""
            head -c \(row.blocks * row.dataBlockSize) /dev/urandom > data
            veritysetup format data hash --data-block-size \(row.dataBlockSize) --hash-block-size \(row.hashBlockSize) \
                --hash \(row.hash) \(salt) | awk '/^Root hash:/ { print $3 }'
            """)
        let rootHash = try #require(parseHex(root))
        func layout() throws -> VerityLayout {
            VerityLayout(data: .whole(try ImageReader.open(w.path("data"))), hash: .whole(try ImageReader.open(w.path("hash"))))
        }
        let parameters = try layout().parameters()
        #expect(parameters.dataBlocks == UInt64(row.blocks))
        #expect(parameters.algorithm == row.hash)
        #expect(parameters.dataBlockSize == row.dataBlockSize)
        #expect(parameters.hashBlockSize == row.hashBlockSize)
        #expect(parameters.salt.count == (row.salt == "-" ? 0 : row.salt.isEmpty ? 32 : 256))
        let hashSize = try #require(try w.shell("stat -c %s hash")).description
        #expect(parameters.hashDeviceBytes == UInt64(hashSize)!)
        try layout().verifyAll(parameters, rootHash: rootHash)

        // A wrong root hash, a flipped data byte, a flipped tree byte: each is a mismatch.
        var wrong = rootHash
        wrong[0] ^= 1
        #expect(throws: VerityError.self) { try layout().verifyAll(parameters, rootHash: wrong) }
        let dataOffset = UInt64.random(in: 0..<UInt64(row.blocks * row.dataBlockSize))
        try w.flip(w.path("data"), at: dataOffset)
        do {
            try layout().verifyAll(parameters, rootHash: rootHash)
            Issue.record("a flipped data byte at \(dataOffset) was not found")
        } catch let error as VerityError {
            #expect(error.mismatch)
            // veritysetup agrees.
            #expect(throws: (any Error).self) { try w.shell("veritysetup verify data hash \(root)") }
        }
        try w.flip(w.path("data"), at: dataOffset)
        try layout().verifyAll(parameters, rootHash: rootHash)
        if parameters.hashDeviceBytes > UInt64(row.hashBlockSize) {
            let treeOffset = UInt64.random(in: UInt64(row.hashBlockSize)..<parameters.hashDeviceBytes)
            try w.flip(w.path("hash"), at: treeOffset)
            #expect(throws: VerityError.self, "a flipped tree byte at \(treeOffset)") {
                try layout().verifyAll(parameters, rootHash: rootHash)
            }
        }
    }

    @Test func superblockBounds() throws {
        var sb = [UInt8](repeating: 0, count: 512)
        sb.replaceSubrange(0..<8, with: Array("verity".utf8) + [0, 0])
        sb.setLittleEndian(UInt32(1), at: 8)
        sb.setLittleEndian(UInt32(1), at: 12)
        sb.replaceSubrange(32..<38, with: Array("sha256".utf8))
        sb.setLittleEndian(UInt32(4096), at: 64)
        sb.setLittleEndian(UInt32(4096), at: 68)
        sb.setLittleEndian(UInt64(10), at: 72)
        sb.setLittleEndian(UInt16(32), at: 80)
        #expect(try VerityParameters.parse(sb).dataBlocks == 10)
        func refused(_ edit: (inout [UInt8]) -> Void) -> String? {
            var copy = sb
            edit(&copy)
            do { _ = try VerityParameters.parse(copy); return nil } catch { return error.description }
        }
        #expect(refused { $0.setLittleEndian(UInt32(2), at: 8) }?.contains("version 2") == true)
        #expect(refused { $0.setLittleEndian(UInt32(0), at: 12) }?.contains("hash type 0") == true)
        #expect(refused { $0.setLittleEndian(UInt32(0), at: 64) }?.contains("data block size 0") == true)
        #expect(refused { $0.setLittleEndian(UInt32(1 << 20), at: 68) }?.contains("hash block size 1048576") == true)
        #expect(refused { $0.setLittleEndian(UInt64(0), at: 72) }?.contains("out of range") == true)
        #expect(refused { $0.setLittleEndian(UInt64.max, at: 72) }?.contains("out of range") == true)
        #expect(refused { $0.setLittleEndian(UInt16(257), at: 80) }?.contains("salt size 257") == true)
        #expect(refused { $0.replaceSubrange(32..<64, with: [UInt8](repeating: 0x41, count: 32)) }?.contains("not supported") == true)
        #expect(refused { $0[0] = 0 }?.contains("signature") == true)
        #expect((try? VerityParameters.parse(Array(sb.prefix(100)))) == nil)
    }

    // MARK: Encodings

    @Test(arguments: [
        ("", [UInt8]?.some([])), ("Zg==", [0x66]), ("Zm8=", [0x66, 0x6f]), ("Zm9v", [0x66, 0x6f, 0x6f]),
        ("Zm9v\nYmFy", Array("foobar".utf8)), (" Z m 9 v ", [0x66, 0x6f, 0x6f]),
        ("Zg=", nil), ("Zg", nil), ("Z===", nil), ("Zg==Zg==", nil), ("Zh==", nil), ("Zm9*", nil), ("Zm-_", nil),
    ] as [(String, [UInt8]?)])
    func base64(_ text: String, _ expected: [UInt8]?) {
        #expect(decodeBase64(text) == expected)
    }

    @Test func base64MatchesOpenSSL() throws {
        let w = try VerityWorkspace()
        for length in [1, 2, 3, 100, 1001] {
            let encoded = try w.shell("head -c \(length) /dev/urandom > r; base64 -w 76 r")
            let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: w.path("r"))))
            #expect(decodeBase64(encoded) == raw)
        }
    }

    @Test func hex() {
        #expect(parseHex("00ffAb") == [0x00, 0xff, 0xab])
        #expect(parseHex("") == nil)
        #expect(parseHex("abc") == nil)
        #expect(parseHex("zz") == nil)
    }

    @Test func crc32() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    // MARK: Signature partition JSON

    @Test func signaturePartitionJSON() throws {
        let hash = String(repeating: "ab", count: 32)
        let parsed = try SignaturePartition.parse(Array("{\"rootHash\":\"\(hash.uppercased())\",\"signature\":\"Zm9v\",\"certificateFingerprint\":\"\(String(repeating: "CD", count: 32))\"}".utf8) + [0, 0, 0])
        #expect(hexString(parsed.rootHash) == hash)
        #expect(parsed.signature == Array("foo".utf8))
        #expect(parsed.certificateFingerprint == String(repeating: "cd", count: 32))
        let tooLong = Array("{\"rootHash\":\"\(hash)\",\"signature\":\"Zm9v\",\"x\":\"".utf8) + [UInt8](repeating: 0x61, count: 70000) + Array("\"}".utf8)
        #expect(throws: VerityError("the signature partition's JSON is \(tooLong.count) bytes, more than 65536")) {
            try SignaturePartition.parse(tooLong)
        }
        #expect(throws: VerityError("the signature partition is empty")) { try SignaturePartition.parse([0, 0]) }
        #expect(throws: VerityError("the signature partition's 'certificateFingerprint' is not a SHA-256 in hex")) {
            try SignaturePartition.parse(Array("{\"rootHash\":\"\(hash)\",\"signature\":\"Zm9v\",\"certificateFingerprint\":1}".utf8))
        }
    }

    // MARK: Trusted certificates

    @Test func trustStoreFromRoot() throws {
        let f = VerityFixtures.shared
        let root = try Fixture()
        let ca = try f.certificate("ca"), signer = try f.certificate("signer"), rogue = try f.certificate("rogue")
        try root.file("usr/lib/verity.d/vendor.crt", ca)
        try root.file("usr/lib/verity.d/masked.crt", rogue)
        try root.file("etc/verity.d/masked.crt", "")                // an empty file masks
        try root.file("usr/lib/verity.d/overridden.crt", rogue)
        try root.file("etc/verity.d/overridden.crt", signer)        // etc wins over usr/lib
        try root.link("etc/verity.d/linked.crt", to: "/dev/null")    // masks nothing there, is nothing
        try root.file("etc/verity.d/notes.txt", rogue)              // not *.crt
        try root.file("etc/verity.d/bad.crt", "not a certificate\n")
        try root.file("etc/verity.d/both.crt", ca + signer)         // several in one file
        let store = try TrustStore.load(root: root.root)
        let fingerprint = { (name: String) in try fixtureShell("cert_fingerprint pki/\(name).crt", in: f.dir) }
        #expect(Set(store.fingerprints) == [try fingerprint("ca"), try fingerprint("signer")])
        #expect(store.fingerprints.count == 4)
        #expect(store.sources.sorted() == ["/etc/verity.d/both.crt", "/etc/verity.d/both.crt",
                                            "/etc/verity.d/overridden.crt", "/usr/lib/verity.d/vendor.crt"])
        #expect(store.problems.contains { $0.contains("bad.crt") })
        #expect(!store.fingerprints.contains(try fingerprint("rogue")))
        // No dirs at all: empty, no error.
        let bare = try Fixture()
        #expect(try TrustStore.load(root: bare.root).isEmpty)
    }
}
