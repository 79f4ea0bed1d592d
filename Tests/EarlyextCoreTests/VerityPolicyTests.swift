import Testing
@testable import EarlyextCore

private let hash = String(repeating: "ab", count: 32)
private let trusted = VerificationEvidence.SignatureState.trusted(signer: "/CN=vendor", fingerprint: String(repeating: "cd", count: 32))

/// One row of the policy table: evidence, and the decision under any, verity and signed.
struct PolicyCase: Sendable, CustomTestStringConvertible {
    var label: String
    var evidence: VerificationEvidence
    var any: PolicyDecision
    var verity: PolicyDecision
    var signed: PolicyDecision
    var testDescription: String { label }
}

let policyCases: [PolicyCase] = [
    PolicyCase(label: "plain image",
               evidence: VerificationEvidence(),
               any: .accept(.none), verity: .refuse(.noVerity), signed: .refuse(.noSignature)),
    PolicyCase(label: "plain image, digest matches",
               evidence: VerificationEvidence(digest: .matches("00")),
               any: .accept(.digest), verity: .refuse(.noVerity), signed: .refuse(.noSignature)),
    PolicyCase(label: "plain image, digest mismatch",
               evidence: VerificationEvidence(digest: .mismatch(expected: "00", actual: "11")),
               any: .refuse(.digestMismatch(expected: "00", actual: "11")),
               verity: .refuse(.digestMismatch(expected: "00", actual: "11")),
               signed: .refuse(.digestMismatch(expected: "00", actual: "11"))),
    PolicyCase(label: "verity, tree matches, no signature",
               evidence: VerificationEvidence(rootHash: hash, rootHashState: .matches),
               any: .accept(.verity), verity: .accept(.verity), signed: .refuse(.noSignature)),
    PolicyCase(label: "verity, tree matches, trusted signature",
               evidence: VerificationEvidence(rootHash: hash, rootHashState: .matches, signature: trusted),
               any: .accept(.signed), verity: .accept(.signed), signed: .accept(.signed)),
    PolicyCase(label: "verity + digest + signature: signed wins",
               evidence: VerificationEvidence(rootHash: hash, rootHashState: .matches, signature: trusted, digest: .matches("00")),
               any: .accept(.signed), verity: .accept(.signed), signed: .accept(.signed)),
    // A signature that is present but fails is never ignored, whatever the policy.
    PolicyCase(label: "bad signature",
               evidence: VerificationEvidence(rootHash: hash, rootHashState: .matches, signature: .bad("x")),
               any: .refuse(.badSignature("x")), verity: .refuse(.badSignature("x")), signed: .refuse(.badSignature("x"))),
    PolicyCase(label: "untrusted signer",
               evidence: VerificationEvidence(rootHash: hash, rootHashState: .matches, signature: .untrusted("y")),
               any: .refuse(.untrustedSigner("y")), verity: .refuse(.untrustedSigner("y")), signed: .refuse(.untrustedSigner("y"))),
    PolicyCase(label: "root hash mismatch, trusted signature",
               evidence: VerificationEvidence(rootHash: hash, rootHashState: .mismatch("z"), signature: trusted),
               any: .refuse(.rootHashMismatch("z")), verity: .refuse(.rootHashMismatch("z")), signed: .refuse(.rootHashMismatch("z"))),
    PolicyCase(label: "root hash mismatch, no signature",
               evidence: VerificationEvidence(rootHash: hash, rootHashState: .mismatch("z")),
               any: .refuse(.rootHashMismatch("z")), verity: .refuse(.rootHashMismatch("z")), signed: .refuse(.rootHashMismatch("z"))),
    PolicyCase(label: "bad signature outranks root hash mismatch",
               evidence: VerificationEvidence(rootHash: hash, rootHashState: .mismatch("z"), signature: .bad("x")),
               any: .refuse(.badSignature("x")), verity: .refuse(.badSignature("x")), signed: .refuse(.badSignature("x"))),
    PolicyCase(label: "digest mismatch outranks everything",
               evidence: VerificationEvidence(rootHash: hash, rootHashState: .mismatch("z"), signature: .bad("x"),
                                              digest: .mismatch(expected: "00", actual: "11")),
               any: .refuse(.digestMismatch(expected: "00", actual: "11")),
               verity: .refuse(.digestMismatch(expected: "00", actual: "11")),
               signed: .refuse(.digestMismatch(expected: "00", actual: "11"))),
    PolicyCase(label: "verity with unchecked tree (activation checks it)",
               evidence: VerificationEvidence(rootHash: hash),
               any: .accept(.verity), verity: .accept(.verity), signed: .refuse(.noSignature)),
]

@Suite struct VerityPolicyTests {
    @Test(arguments: policyCases)
    func decisions(_ row: PolicyCase) {
        #expect(decide(policy: .any, evidence: row.evidence) == row.any)
        #expect(decide(policy: .verity, evidence: row.evidence) == row.verity)
        #expect(decide(policy: .signed, evidence: row.evidence) == row.signed)
    }

    /// The preflight (structure only) never disagrees with `decide`: whatever it refuses, decide
    /// refuses the same way for every evidence with that structure.
    @Test(arguments: RequiredVerification.allCases)
    func preflightAgreesWithDecide(_ policy: RequiredVerification) {
        for hasVerity in [false, true] {
            for signature in [VerificationEvidence.SignatureState.absent, trusted] where hasVerity || signature == .absent {
                let evidence = VerificationEvidence(rootHash: hasVerity ? hash : nil, rootHashState: hasVerity ? .matches : .unchecked,
                                                    signature: signature)
                let pre = preflightRefusal(policy: policy, hasVerity: hasVerity, hasSignature: signature != .absent)
                switch decide(policy: policy, evidence: evidence) {
                case .refuse(let refusal): #expect(pre == refusal, "\(policy) verity=\(hasVerity) \(signature)")
                case .accept: #expect(pre == nil, "\(policy) verity=\(hasVerity) \(signature)")
                }
            }
        }
    }

    /// A selection may make the policy stricter, never looser.
    @Test(arguments: [
        (RequiredVerification.any, nil, RequiredVerification.any, false),
        (.any, .verity, .verity, false),
        (.any, .signed, .signed, false),
        (.verity, .any, .verity, true),
        (.verity, .signed, .signed, false),
        (.signed, .any, .signed, true),
        (.signed, .verity, .signed, true),
        (.signed, .signed, .signed, false),
    ] as [(RequiredVerification, RequiredVerification?, RequiredVerification, Bool)])
    func perImagePolicy(_ global: RequiredVerification, _ image: RequiredVerification?, _ expected: RequiredVerification, _ ignored: Bool) {
        let result = RequiredVerification.effective(global: global, image: image)
        #expect(result.policy == expected)
        #expect(result.ignoredLooser == ignored)
    }

    @Test(arguments: [
        ("", RequiredVerification.any, 0, 0),
        ("[Policy]\nRequire=signed\n", .signed, 0, 0),
        ("[Policy]\nRequire=verity\n", .verity, 0, 0),
        ("[Policy]\nRequire=any\n", .any, 0, 0),
        ("[Policy]\nRequire=Signed\n", .any, 0, 1),
        ("[Policy]\nRequire=strict\n", .any, 0, 1),
        ("[Policy]\nRequire=signed\nOther=1\n", .signed, 1, 0),
        ("[Fetch]\nRequire=signed\n", .any, 0, 0),
    ] as [(String, RequiredVerification, Int, Int)])
    func policyConfig(_ text: String, _ expected: RequiredVerification, _ warnings: Int, _ errors: Int) {
        var config = PolicyConfig()
        let result = config.apply(config: INIFile.parse(text), source: "earlyext.conf")
        #expect(config.require == expected)
        #expect(result.warnings.count == warnings)
        #expect(result.errors.count == errors)
    }

    @Test func refusalMessagesAndCodes() {
        #expect(Refusal.noSignature.code == "no-signature")
        #expect(Refusal.badSignature("x").description == "bad signature: x")
        #expect(Refusal.untrustedSigner("y").description == "untrusted signer: y")
        #expect(Refusal.rootHashMismatch("z").description == "root hash mismatch: z")
        #expect(Refusal.noVerity.description.hasPrefix("no verity data"))
        #expect(Refusal.noSignature.description.hasPrefix("no signature"))
    }

    @Test func deviceMapperNames() {
        let root = String(repeating: "3f", count: 32)
        #expect(DeviceMapper.deviceName(image: "kubernetes", rootHash: root, attempt: 0) == "earlyext-kubernetes-3f3f3f3f3f3f")
        #expect(DeviceMapper.deviceName(image: "kubernetes", rootHash: root, attempt: 2) == "earlyext-kubernetes-3f3f3f3f3f3f-2")
        #expect(DeviceMapper.deviceName(image: "a b/c:ü", rootHash: root, attempt: 0) == "earlyext-a_b_c__-3f3f3f3f3f3f")
        let long = DeviceMapper.deviceName(image: String(repeating: "x", count: 300), rootHash: root, attempt: 15)
        #expect(long.utf8.count < 128)
    }

    @Test func verificationJSON() throws {
        let v = Verification(kind: .signed, format: .ddi, policy: .signed, designator: .usr, rootHash: hash,
                             signer: "/CN=vendor", signerFingerprint: "cd", signatureCheckedBy: .kernel)
        let json = v.json
        #expect(json["kind"] == "signed")
        #expect(json["format"] == "ddi")
        #expect(json["policy"] == "signed")
        #expect(json["partition"] == "usr")
        #expect(json["root_hash"] == .string(hash))
        #expect(json["signer_fingerprint"] == "cd")
        #expect(json["signature_checked_by"] == "kernel")
        #expect(json["sha256"] == nil)
        // It round-trips through the JSON parser the state record is read with.
        #expect(try JSON.parse(json.render()) == json)
        #expect(v.summary == "signed (root hash abababab…abababab, signer /CN=vendor, checked by kernel, policy signed)")
        #expect(Verification(kind: .none, format: .plain, policy: .any).summary == "none (policy any)")
    }
}
