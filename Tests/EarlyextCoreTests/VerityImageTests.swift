import Foundation
import Testing
@testable import EarlyextCore

/// What `verifyImage` must say under one policy.
enum Expect: Equatable, Sendable, CustomStringConvertible {
    case accept(Verification.Kind)
    /// A refusal, by `Refusal.code`.
    case refuse(String)

    var description: String {
        switch self {
        case .accept(let kind): "accept \(kind.rawValue)"
        case .refuse(let code): "refuse \(code)"
        }
    }
}

enum TrustChoice: Sendable { case ca, signer, rogue, none }

/// One image, how it is made from the shared fixtures, and the verdict under each policy.
struct ImageCase: Sendable, CustomTestStringConvertible {
    var label: String
    var trust: TrustChoice = .ca
    var build: @Sendable (VerityWorkspace) throws -> String
    var any: Expect
    var verity: Expect
    var signed: Expect
    /// Every refusal's reason must contain this.
    var reason: String?
    var testDescription: String { label }

    init(_ label: String, trust: TrustChoice = .ca, all: Expect, reason: String? = nil,
         build: @escaping @Sendable (VerityWorkspace) throws -> String) {
        self.init(label, trust: trust, any: all, verity: all, signed: all, reason: reason, build: build)
    }

    init(_ label: String, trust: TrustChoice = .ca, any: Expect, verity: Expect, signed: Expect, reason: String? = nil,
         build: @escaping @Sendable (VerityWorkspace) throws -> String) {
        self.label = label
        self.trust = trust
        self.build = build
        self.any = any
        self.verity = verity
        self.signed = signed
        self.reason = reason
    }
}

// MARK: - Builders

/// A copy of the signed usr DDI.
private func usrDDI(_ w: VerityWorkspace, as name: String = "ext.raw") throws -> String {
    try w.copy(w.fixtures.usrDDI, to: name)
}

/// The signed usr DDI with its signature partition (3) replaced by `json`.
private func withSignatureJSON(_ w: VerityWorkspace, _ json: String) throws -> String {
    let image = try usrDDI(w)
    try w.fillPartition(image, 3, Array(json.utf8))
    return image
}

/// `sig_json` for the usr DDI's root hash (or `hash`), signed by `who` with `mode`.
private func signedJSON(_ w: VerityWorkspace, hash: String? = nil, who: String = "signer", mode: String = "",
                        certificate: String? = nil) throws -> String {
    let root = hash ?? w.fixtures.usrRootHash
    return try w.shell("""
        sign_hash \(root) "$PKI/\(who).key" "$PKI/\(who).crt" sig.p7s \(mode)
        sig_json \(root) sig.p7s "$PKI/\(certificate ?? who).crt"
        """)
}

/// A plain image with sidecars from the usr DDI's parts: `s.raw` and whichever of
/// `s.verity`, `s.roothash`, `s.roothash.p7s` are asked for.
private func sidecars(_ w: VerityWorkspace, verity: Bool = true, roothash: String? = "", p7s: Bool = true) throws -> String {
    let f = w.fixtures
    let image = try w.copy(f.part("usr", "data.img"), to: "s.raw")
    if verity { try w.copy(f.part("usr", "hash.img"), to: "s.verity") }
    if let roothash { try w.shell("printf '%s\\n' '\(roothash.isEmpty ? f.usrRootHash : roothash)' > s.roothash") }
    if p7s { try w.copy(f.part("usr", "sig.p7s"), to: "s.roothash.p7s") }
    return image
}

private let gptCases: [ImageCase] = [
    ImageCase("GPT header CRC32 wrong", all: .refuse("malformed"), reason: "GPT header CRC32 mismatch") { w in
        let image = try usrDDI(w)
        try w.editGPTHeader(image, fixCRC: false) { $0[60] ^= 0xFF }
        return image
    },
    ImageCase("GPT entry array CRC32 wrong", all: .refuse("malformed"), reason: "entry array CRC32 mismatch") { w in
        let image = try usrDDI(w)
        try w.flip(image, at: 1024 + 56) // the first entry's name
        return image
    },
    ImageCase("GPT entry size 0", all: .refuse("malformed"), reason: "partition entry size 0") { w in
        let image = try usrDDI(w)
        try w.editGPTHeader(image) { $0.setLittleEndian(UInt32(0), at: 84) }
        return image
    },
    ImageCase("GPT entry size 129", all: .refuse("malformed"), reason: "partition entry size 129") { w in
        let image = try usrDDI(w)
        try w.editGPTHeader(image) { $0.setLittleEndian(UInt32(129), at: 84) }
        return image
    },
    ImageCase("GPT 2^32-1 entries", all: .refuse("malformed"), reason: "partition entry count 4294967295") { w in
        let image = try usrDDI(w)
        try w.editGPTHeader(image) { $0.setLittleEndian(UInt32.max, at: 80) }
        return image
    },
    ImageCase("GPT entry array of 2 MiB", all: .refuse("malformed"), reason: "larger than 1048576 bytes") { w in
        let image = try usrDDI(w)
        try w.editGPTHeader(image) { $0.setLittleEndian(UInt32(4096), at: 80); $0.setLittleEndian(UInt32(512), at: 84) }
        return image
    },
    ImageCase("GPT header size 2^32-1", all: .refuse("malformed"), reason: "GPT header size 4294967295") { w in
        let image = try usrDDI(w)
        try w.editGPTHeader(image, fixCRC: false) { $0.setLittleEndian(UInt32.max, at: 12) }
        return image
    },
    ImageCase("GPT partition LBAs beyond the file", all: .refuse("malformed"), reason: "outside the usable area") { w in
        let image = try usrDDI(w)
        try w.editGPTEntry(image, 0) { $0.setLittleEndian(UInt64(1) << 40, at: 40) }
        return image
    },
    ImageCase("GPT last usable LBA beyond the file", all: .refuse("malformed"), reason: "do not fit the image") { w in
        let image = try usrDDI(w)
        try w.editGPTHeader(image) { $0.setLittleEndian(UInt64.max, at: 48) }
        return image
    },
    ImageCase("GPT entry array LBA beyond the file", all: .refuse("malformed"), reason: "partition entry array") { w in
        let image = try usrDDI(w)
        try w.editGPTHeader(image) { $0.setLittleEndian(UInt64(1) << 60, at: 72) }
        return image
    },
    ImageCase("GPT overlapping partitions", all: .refuse("malformed"), reason: "overlap") { w in
        let image = try usrDDI(w)
        let first = try w.partitions(image)[1]!.offset / 512
        try w.editGPTEntry(image, 1) { $0.setLittleEndian(first, at: 32) }
        return image
    },
    ImageCase("truncated DDI", all: .refuse("malformed"), reason: "outside the image") { w in
        let image = try usrDDI(w)
        try w.shell("truncate -s 1M ext.raw")
        return image
    },
    ImageCase("no protective MBR", all: .refuse("malformed"), reason: "protective MBR") { w in
        let image = try usrDDI(w)
        try w.write(image, offset: 510, [0, 0])
        return image
    },
]

private let ddiCases: [ImageCase] = [
    ImageCase("signed usr DDI", all: .accept(.signed)) { w in try usrDDI(w) },
    ImageCase("signed root DDI", all: .accept(.signed)) { w in try w.copy(w.fixtures.rootDDI, to: "r.raw") },
    ImageCase("signer certificate trusted directly (as systemd does)", trust: .signer, all: .accept(.signed)) { w in try usrDDI(w) },
    ImageCase("signature without certificates, signer trusted", trust: .signer, all: .accept(.signed)) { w in
        try withSignatureJSON(w, try signedJSON(w, mode: "nocerts"))
    },
    ImageCase("signature without certificates, only the CA trusted", all: .refuse("untrusted-signer"),
              reason: "neither in the signature nor trusted") { w in
        try withSignatureJSON(w, try signedJSON(w, mode: "nocerts"))
    },
    ImageCase("no trusted certificates at all", trust: .none, all: .refuse("untrusted-signer"),
              reason: "no trusted certificates are installed") { w in try usrDDI(w) },
    ImageCase("signed by an untrusted certificate", all: .refuse("untrusted-signer"), reason: "earlyext test rogue") { w in
        try withSignatureJSON(w, try signedJSON(w, who: "rogue"))
    },
    ImageCase("only another certificate trusted", trust: .rogue, all: .refuse("untrusted-signer"), reason: "not trusted") { w in
        try usrDDI(w)
    },
    ImageCase("tampered data block", all: .refuse("root-hash-mismatch"), reason: "does not match its hash") { w in
        let image = try usrDDI(w)
        try w.flip(image, at: try w.partitions(image)[1]!.offset + 512 * 1024 + 17)
        return image
    },
    ImageCase("tampered hash tree (top block)", all: .refuse("root-hash-mismatch"), reason: "top of the hash tree") { w in
        let image = try usrDDI(w)
        try w.flip(image, at: try w.partitions(image)[2]!.offset + 4096 + 5)
        return image
    },
    ImageCase("tampered hash tree (level 0)", all: .refuse("root-hash-mismatch"), reason: "does not match its hash") { w in
        let image = try usrDDI(w)
        let hash = try w.partitions(image)[2]!
        // 1 MiB + fs: level 0 has 3 blocks after the superblock and the top block.
        try w.flip(image, at: hash.offset + 2 * 4096 + 40)
        return image
    },
    ImageCase("tampered root hash in the signature JSON", all: .refuse("bad-signature"), reason: "does not verify over root hash") { w in
        let original = try String(contentsOfFile: w.fixtures.part("usr", "sig.json"), encoding: .utf8)
        let root = w.fixtures.usrRootHash
        let tampered = String(root.dropLast()) + (root.hasSuffix("0") ? "1" : "0")
        return try withSignatureJSON(w, original.replacingOccurrences(of: root, with: tampered))
    },
    ImageCase("trusted signature over a root hash that is not the tree's", all: .refuse("root-hash-mismatch"),
              reason: "top of the hash tree") { w in
        try withSignatureJSON(w, try signedJSON(w, hash: String(repeating: "5a", count: 32)))
    },
    ImageCase("signature over the root hash plus a newline", all: .refuse("bad-signature"), reason: "followed by a newline") { w in
        try withSignatureJSON(w, try signedJSON(w, mode: "newline"))
    },
    ImageCase("certificateFingerprint names another certificate", all: .refuse("bad-signature"),
              reason: "names certificate") { w in
        try withSignatureJSON(w, try signedJSON(w, certificate: "rogue"))
    },
    ImageCase("truncated signature partition", all: .refuse("malformed"), reason: "not JSON") { w in
        let json = try String(contentsOfFile: w.fixtures.part("usr", "sig.json"), encoding: .utf8)
        return try withSignatureJSON(w, String(json.prefix(json.count / 2)))
    },
    ImageCase("garbage JSON", all: .refuse("malformed"), reason: "not JSON") { w in
        try withSignatureJSON(w, "{rootHash: 'abc', signature: ]]]")
    },
    ImageCase("JSON that is not an object", all: .refuse("malformed"), reason: "not an object") { w in
        try withSignatureJSON(w, "[\"rootHash\"]")
    },
    ImageCase("JSON without rootHash", all: .refuse("malformed"), reason: "no string 'rootHash'") { w in
        try withSignatureJSON(w, "{\"signature\":\"AAAA\"}")
    },
    ImageCase("rootHash not hex", all: .refuse("malformed"), reason: "'rootHash' is not a hex root hash") { w in
        try withSignatureJSON(w, "{\"rootHash\":\"xyz\",\"signature\":\"AAAA\"}")
    },
    ImageCase("signature not base64", all: .refuse("malformed"), reason: "'signature' is not base64") { w in
        try withSignatureJSON(w, "{\"rootHash\":\"\(w.fixtures.usrRootHash)\",\"signature\":\"***\"}")
    },
    ImageCase("signature base64 but not PKCS#7", all: .refuse("bad-signature"), reason: "not a DER PKCS#7") { w in
        try withSignatureJSON(w, "{\"rootHash\":\"\(w.fixtures.usrRootHash)\",\"signature\":\"aGVsbG8gd29ybGQ=\"}")
    },
    ImageCase("data after the NUL in the signature partition", all: .refuse("malformed"), reason: "after the NUL") { w in
        let json = try String(contentsOfFile: w.fixtures.part("usr", "sig.json"), encoding: .utf8)
        return try withSignatureJSON(w, json + "\0junk")
    },
    ImageCase("arm64 DDI on an x86-64 host", all: .refuse("wrong-architecture"), reason: "for arm64, this host is x86-64") { w in
        try w.shell("build_signed_ddi . arm x86-64 usr \"$PKI\" >/dev/null && rm arm.raw && make_ddi arm.raw arm64 usr arm.work/data.img arm.work/hash.img arm.work/sig.json")
        return w.path("arm.raw")
    },
    ImageCase("x86-64 data partition with arm64 verity partitions", any: .accept(.none), verity: .refuse("no-verity"),
              signed: .refuse("no-signature")) { w in
        // The arm64 verity and signature partitions are ignored: they do not belong to this usr.
        let f = w.fixtures
        try w.shell("""
            make_ddi mixed.raw x86-64 usr '\(f.part("usr", "data.img"))'
            echo "size=8, type=$(dps_type arm64 usr-verity)" | sfdisk -q --append mixed.raw >/dev/null
            """)
        return w.path("mixed.raw")
    },
    ImageCase("usr DDI without a signature partition", any: .accept(.none), verity: .refuse("no-verity"),
              signed: .refuse("no-signature")) { w in
        let f = w.fixtures
        try w.shell("make_ddi nosig.raw x86-64 usr '\(f.part("usr", "data.img"))' '\(f.part("usr", "hash.img"))'")
        return w.path("nosig.raw")
    },
    ImageCase("usr DDI without verity", any: .accept(.none), verity: .refuse("no-verity"), signed: .refuse("no-signature")) { w in
        try w.shell("make_ddi plain.raw x86-64 usr '\(w.fixtures.part("usr", "data.img"))'")
        return w.path("plain.raw")
    },
    ImageCase("usr DDI without a signature partition, root hash sidecar", any: .accept(.verity), verity: .accept(.verity),
              signed: .refuse("no-signature")) { w in
        let f = w.fixtures
        try w.shell("make_ddi h.raw x86-64 usr '\(f.part("usr", "data.img"))' '\(f.part("usr", "hash.img"))'; echo \(f.usrRootHash) > h.roothash")
        return w.path("h.raw")
    },
    ImageCase("DDI with a NAME.roothash sidecar too", all: .refuse("ambiguous"), reason: "two sources for the root hash") { w in
        let image = try usrDDI(w)
        try w.shell("echo \(w.fixtures.usrRootHash) > ext.roothash")
        return image
    },
    ImageCase("DDI with a NAME.verity sidecar too", all: .refuse("ambiguous"), reason: "hash tree belongs in") { w in
        let image = try usrDDI(w)
        try w.copy(w.fixtures.part("usr", "hash.img"), to: "ext.verity")
        return image
    },
    ImageCase("two usr partitions", all: .refuse("malformed"), reason: "more than one usr partition") { w in
        let image = try usrDDI(w)
        try w.shell("echo \"size=8, type=$(dps_type x86-64 usr)\" | sfdisk -q --append ext.raw >/dev/null")
        return image
    },
    ImageCase("a root and a usr partition", all: .refuse("ambiguous"), reason: "both a root and a usr partition") { w in
        let image = try usrDDI(w)
        try w.shell("echo \"size=8, type=$(dps_type x86-64 root)\" | sfdisk -q --append ext.raw >/dev/null")
        return image
    },
    ImageCase("verity superblock damaged", all: .refuse("malformed"), reason: "no verity superblock") { w in
        let image = try usrDDI(w)
        try w.flip(image, at: try w.partitions(image)[2]!.offset)
        return image
    },
    ImageCase("verity superblock claims 2^40 data blocks", all: .refuse("malformed"), reason: "but the data is only") { w in
        let image = try usrDDI(w)
        var count = [UInt8](repeating: 0, count: 8)
        count.setLittleEndian(UInt64(1) << 40, at: 0)
        try w.write(image, offset: try w.partitions(image)[2]!.offset + 72, count)
        return image
    },
    ImageCase("verity hash block size 3", all: .refuse("malformed"), reason: "hash block size 3") { w in
        let image = try usrDDI(w)
        try w.write(image, offset: try w.partitions(image)[2]!.offset + 68, [3, 0, 0, 0])
        return image
    },
    ImageCase("verity salt of 1000 bytes", all: .refuse("malformed"), reason: "salt size 1000") { w in
        let image = try usrDDI(w)
        try w.write(image, offset: try w.partitions(image)[2]!.offset + 80, [0xE8, 0x03])
        return image
    },
    ImageCase("verity algorithm md5", all: .refuse("malformed"), reason: "'md5' is not supported") { w in
        let image = try usrDDI(w)
        try w.write(image, offset: try w.partitions(image)[2]!.offset + 32, Array("md5\0\0\0\0".utf8))
        return image
    },
]

private let sidecarCases: [ImageCase] = [
    ImageCase("plain squashfs", any: .accept(.none), verity: .refuse("no-verity"), signed: .refuse("no-signature")) { w in
        try sidecars(w, verity: false, roothash: nil, p7s: false)
    },
    ImageCase("sidecars, signed", all: .accept(.signed)) { w in try sidecars(w) },
    ImageCase("sidecars, not signed", any: .accept(.verity), verity: .accept(.verity), signed: .refuse("no-signature")) { w in
        try sidecars(w, p7s: false)
    },
    ImageCase("sidecars, signed by an untrusted certificate", all: .refuse("untrusted-signer")) { w in
        let image = try sidecars(w, p7s: false)
        try w.shell("sign_hash \(w.fixtures.usrRootHash) \"$PKI/rogue.key\" \"$PKI/rogue.crt\" s.roothash.p7s")
        return image
    },
    ImageCase("sidecar root hash does not match the tree", any: .refuse("root-hash-mismatch"),
              verity: .refuse("root-hash-mismatch"), signed: .refuse("no-signature"), reason: "top of the hash tree") { w in
        try sidecars(w, roothash: w.fixtures.rootRootHash, p7s: false)
    },
    ImageCase("sidecar root hash changed, signature for the old one", all: .refuse("bad-signature")) { w in
        try sidecars(w, roothash: w.fixtures.rootRootHash)
    },
    ImageCase("sidecars, tampered data", any: .refuse("root-hash-mismatch"), verity: .refuse("root-hash-mismatch"),
              signed: .refuse("root-hash-mismatch"), reason: "does not match its hash") { w in
        let image = try sidecars(w)
        try w.flip(image, at: 700 * 1024)
        return image
    },
    ImageCase("sidecar root hash is not hex", all: .refuse("malformed"), reason: "s.roothash is not a hex root hash") { w in
        try sidecars(w, roothash: "not-a-hash")
    },
    ImageCase("NAME.verity without NAME.roothash", all: .refuse("malformed"), reason: "no root hash") { w in
        try sidecars(w, roothash: nil, p7s: false)
    },
    ImageCase("NAME.roothash without NAME.verity", all: .refuse("malformed"), reason: "no hash tree") { w in
        try sidecars(w, verity: false, p7s: false)
    },
    ImageCase("NAME.roothash.p7s alone", all: .refuse("malformed"), reason: "without s.roothash") { w in
        try sidecars(w, verity: false, roothash: nil)
    },
    ImageCase("sidecar is a symlink", all: .refuse("malformed"), reason: "symlink") { w in
        let image = try sidecars(w, roothash: nil)
        try w.shell("echo \(w.fixtures.usrRootHash) > elsewhere; ln -s elsewhere s.roothash")
        return image
    },
    ImageCase("empty NAME.roothash.p7s", all: .refuse("bad-signature"), reason: "empty") { w in
        let image = try sidecars(w, p7s: false)
        try w.shell(": > s.roothash.p7s")
        return image
    },
    ImageCase("garbage NAME.roothash.p7s", all: .refuse("bad-signature"), reason: "not a DER PKCS#7") { w in
        let image = try sidecars(w, p7s: false)
        try w.shell("head -c 300 /dev/urandom > s.roothash.p7s")
        return image
    },
]

/// The verity images: each built from fresh fixtures, each verdict asserted under every policy.
@Suite(.serialized) struct VerityImageTests {
    static let architecture = "x86-64"

    func trust(_ choice: TrustChoice) throws -> TrustStore {
        switch choice {
        case .ca: try VerityFixtures.shared.trust(["ca"])
        case .signer: try VerityFixtures.shared.trust(["signer"])
        case .rogue: try VerityFixtures.shared.trust(["rogue"])
        case .none: .empty
        }
    }

    func check(_ row: ImageCase) throws {
        let workspace = try VerityWorkspace()
        let image = try row.build(workspace)
        let trust = try trust(row.trust)
        for (policy, expected) in [(RequiredVerification.any, row.any), (.verity, row.verity), (.signed, row.signed)] {
            let verdict = verifyImage(path: image, policy: policy, trust: trust, architecture: Self.architecture, activate: false)
            let actual: Expect
            switch verdict.outcome {
            case .accept(let kind): actual = .accept(kind)
            case .refuse(let refusal): actual = .refuse(refusal.code)
            case .error(let message): actual = .refuse("error: \(message)")
            }
            #expect(actual == expected, "\(row.label) under \(policy): \(verdict.reason)")
            if let reason = row.reason, case .refuse(let code) = expected, code != "no-signature", code != "no-verity" {
                #expect(verdict.reason.contains(reason), "\(row.label) under \(policy): \(verdict.reason)")
            }
            // The JSON rendering parses back.
            #expect((try? JSON.parse(verdict.json.render())) == verdict.json)
        }
    }

    @Test(arguments: ddiCases) func ddi(_ row: ImageCase) throws { try check(row) }
    @Test(arguments: sidecarCases) func sidecar(_ row: ImageCase) throws { try check(row) }
    @Test(arguments: gptCases) func gpt(_ row: ImageCase) throws { try check(row) }

    /// What an accepted signed DDI records.
    @Test func signedDDIVerification() throws {
        let f = VerityFixtures.shared
        let verdict = verifyImage(path: f.usrDDI, policy: .signed, trust: try f.trust(["ca"]), architecture: "x86-64", activate: false)
        #expect(verdict.accepted, "\(verdict.reason)")
        let v = verdict.verification
        #expect(v.kind == .signed)
        #expect(v.format == .ddi)
        #expect(v.designator == .usr)
        #expect(v.rootHash == f.usrRootHash)
        #expect(v.signer?.contains("earlyext test signer") == true)
        let fingerprint = try fixtureShell("cert_fingerprint pki/signer.crt", in: f.dir)
        #expect(v.signerFingerprint == fingerprint)
        #expect(v.signatureCheckedBy == .userspace)
        if !DeviceMapper.available {
            #expect(v.notes.contains { $0.contains("this kernel has no device-mapper") })
        }
        // The root designator is reported as such.
        let root = verifyImage(path: f.rootDDI, policy: .signed, trust: try f.trust(["ca"]), architecture: "x86-64", activate: false)
        #expect(root.verification.designator == .root)
        #expect(root.verification.rootHash == f.rootRootHash)
    }

    /// The same DDI on an arm64 host: its partitions are for x86-64.
    @Test func otherHostArchitecture() throws {
        let f = VerityFixtures.shared
        let verdict = verifyImage(path: f.usrDDI, policy: .any, trust: try f.trust(["ca"]), architecture: "arm64", activate: false)
        #expect(verdict.outcome == .refuse(.wrongArchitecture("the image has a usr partition for x86-64, this host is arm64")))
    }

    @Test func digests() throws {
        let w = try VerityWorkspace()
        let image = try sidecars(w, verity: false, roothash: nil, p7s: false)
        let sha = try w.shell("sha256sum s.raw | cut -d' ' -f1")
        let good = verifyImage(path: image, policy: .any, trust: .empty, architecture: "x86-64", digest: .verify(expected: sha.uppercased()), activate: false)
        #expect(good.outcome == .accept(.digest))
        #expect(good.verification.sha256 == sha)
        let bad = verifyImage(path: image, policy: .any, trust: .empty, architecture: "x86-64",
                              digest: .verify(expected: String(repeating: "0", count: 64)), activate: false)
        #expect(bad.outcome == .refuse(.digestMismatch(expected: String(repeating: "0", count: 64), actual: sha)))
        // A digest never lifts a plain image over a verity policy.
        let strict = verifyImage(path: image, policy: .verity, trust: .empty, architecture: "x86-64", digest: .verify(expected: sha), activate: false)
        #expect(strict.outcome == .refuse(.noVerity))
    }

    @Test func missingImage() {
        let verdict = verifyImage(path: "/nonexistent/x.raw", policy: .any, trust: .empty, architecture: "x86-64", activate: false)
        guard case .error(let message) = verdict.outcome else { Issue.record("expected an error, got \(verdict.reason)"); return }
        #expect(message.contains("cannot open"))
    }
}
