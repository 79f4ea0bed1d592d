/// What an image must prove before it is merged: `[Policy] Require=` in earlyext.conf, and
/// `Policy=` in a selection file (which may only make it stricter).
public enum RequiredVerification: String, Comparable, CaseIterable, Sendable {
    /// Anything that is not refused: a plain image may merge.
    case any
    /// dm-verity data with a root hash (a DDI's verity partition, or sidecars).
    case verity
    /// dm-verity with a root hash signature by a trusted certificate.
    case signed

    private var rank: Int {
        switch self {
        case .any: 0
        case .verity: 1
        case .signed: 2
        }
    }

    public static func < (a: RequiredVerification, b: RequiredVerification) -> Bool { a.rank < b.rank }

    /// The policy for one image: the global one, made stricter (never looser) by a selection's
    /// `Policy=`. A looser per-image value is ignored; the second element says so, for a warning.
    public static func effective(global: RequiredVerification, image: RequiredVerification?)
        -> (policy: RequiredVerification, ignoredLooser: Bool) {
        guard let image else { return (global, false) }
        return image >= global ? (image, false) : (global, true)
    }
}

/// `[Policy]` of `etc/earlyext/earlyext.conf`.
public struct PolicyConfig: Equatable, Sendable {
    public var require: RequiredVerification = .any

    public init(require: RequiredVerification = .any) { self.require = require }

    /// Applies `[Policy]` (`source` names the file in messages). An unknown key is a warning; a
    /// bad `Require=` is an error and leaves the policy as it was. (Callers that cannot read the
    /// file must not fall back to `any` silently: treat that as an error too.)
    public mutating func apply(config: INIFile, source: String) -> (warnings: [String], errors: [String]) {
        var warnings: [String] = []
        var errors: [String] = []
        for entry in config.entries where entry.section == "Policy" {
            let place = "\(source):\(entry.line): \(entry.key)="
            switch entry.key {
            case "Require":
                guard let value = RequiredVerification(rawValue: entry.value) else {
                    errors.append("\(place): '\(entry.value)' is not one of any, verity, signed")
                    continue
                }
                require = value
            default:
                warnings.append("\(place): unknown key, ignored")
            }
        }
        return (warnings, errors)
    }
}

/// Why an image is refused. Each case is one reason a user can act on; `description` is the
/// one-line message (and what `verify` prints).
public enum Refusal: Equatable, Sendable, CustomStringConvertible {
    /// The image or its verity data cannot be used as it is (bad GPT, bad superblock, garbage
    /// JSON, truncated partitions, a sidecar that is not hex, …).
    case malformed(String)
    /// The image is a DDI, and also has sidecar files: which of the two describes it?
    case ambiguous(String)
    /// A DDI without partitions for this architecture (maybe for another).
    case wrongArchitecture(String)
    /// The policy asks for verity (or a signature), and the image has no verity data.
    case noVerity
    /// The policy asks for a signature, and the image has verity data but no signature.
    case noSignature
    /// A signature is there but malformed, or does not verify over the root hash.
    case badSignature(String)
    /// A signature verifies, but its signer is not trusted.
    case untrustedSigner(String)
    /// The data or hash tree does not hash to the root hash, or two sources of the root hash
    /// disagree (sidecar vs. signature partition).
    case rootHashMismatch(String)
    /// The image's SHA-256 is not the one expected (a selection file's `SHA256=`).
    case digestMismatch(expected: String, actual: String)

    /// A short, stable name for each case (state record, JSON, tests).
    public var code: String {
        switch self {
        case .malformed: "malformed"
        case .ambiguous: "ambiguous"
        case .wrongArchitecture: "wrong-architecture"
        case .noVerity: "no-verity"
        case .noSignature: "no-signature"
        case .badSignature: "bad-signature"
        case .untrustedSigner: "untrusted-signer"
        case .rootHashMismatch: "root-hash-mismatch"
        case .digestMismatch: "digest-mismatch"
        }
    }

    public var description: String {
        switch self {
        case .malformed(let detail): "malformed image: \(detail)"
        case .ambiguous(let detail): "ambiguous image: \(detail)"
        case .wrongArchitecture(let detail): "wrong architecture: \(detail)"
        case .noVerity: "no verity data (the policy requires verity)"
        case .noSignature: "no signature (the policy requires a signed root hash)"
        case .badSignature(let detail): "bad signature: \(detail)"
        case .untrustedSigner(let detail): "untrusted signer: \(detail)"
        case .rootHashMismatch(let detail): "root hash mismatch: \(detail)"
        case .digestMismatch(let expected, let actual): "digest mismatch: SHA-256 is \(actual), expected \(expected)"
        }
    }
}

/// The facts gathered about one image, for `decide`. Gathering them has side effects (reading,
/// hashing, perhaps the kernel's signature check); deciding has none.
public struct VerificationEvidence: Equatable, Sendable {
    public enum SignatureState: Equatable, Sendable {
        /// No signature at all. (A signature that is present is always checked: there is no
        /// "present but not checked" state, so nothing can be accepted past one.)
        case absent
        case trusted(signer: String, fingerprint: String)
        case bad(String)
        case untrusted(String)
    }

    public enum RootHashState: Equatable, Sendable {
        /// The tree was not checked against the root hash (no verity data, or not yet).
        case unchecked
        /// Checked (the top block, or every block): it matches.
        case matches
        case mismatch(String)
    }

    public enum DigestState: Equatable, Sendable {
        /// No digest was asked for.
        case none
        case matches(String)
        case mismatch(expected: String, actual: String)
    }

    /// The root hash, lowercase hex, if the image has verity data.
    public var rootHash: String?
    public var rootHashState: RootHashState = .unchecked
    public var signature: SignatureState = .absent
    public var digest: DigestState = .none

    public init(rootHash: String? = nil, rootHashState: RootHashState = .unchecked,
                signature: SignatureState = .absent, digest: DigestState = .none) {
        self.rootHash = rootHash
        self.rootHashState = rootHashState
        self.signature = signature
        self.digest = digest
    }
}

/// The policy decision: merge as this kind, or refuse for this reason.
public enum PolicyDecision: Equatable, Sendable {
    case accept(Verification.Kind)
    case refuse(Refusal)
}

/// The policy decision, a pure function of the policy and the evidence.
///
/// Evidence against the image refuses it under every policy, `any` included: a digest that does
/// not match, a signature that is present but bad or untrusted, a tree that does not match its
/// root hash. There is no fallback from "signed" to "verity" to "plain": a signature that does not
/// verify is never ignored (systemd #39168, kairos #4425 are what earlyext must not do).
/// Then the policy: `signed` needs a trusted signature, `verity` needs a root hash.
/// The kind is the strongest thing proven: signed, verity, digest, none.
public func decide(policy: RequiredVerification, evidence: VerificationEvidence) -> PolicyDecision {
    if let refusal = evidenceRefusal(evidence) { return .refuse(refusal) }
    let hasVerity = evidence.rootHash != nil
    var signed = false
    if case .trusted = evidence.signature { signed = true }
    switch policy {
    case .signed:
        guard hasVerity, signed else { return .refuse(.noSignature) }
    case .verity:
        guard hasVerity else { return .refuse(.noVerity) }
    case .any:
        break
    }
    if signed && hasVerity { return .accept(.signed) }
    if hasVerity { return .accept(.verity) }
    if case .matches = evidence.digest { return .accept(.digest) }
    return .accept(.none)
}

/// The evidence against an image, whatever the policy: a digest mismatch, a bad or untrusted
/// signature, a tree that does not match its root hash (in that order). nil if there is none
/// (yet): checks still to come may add some. `decide` starts with this.
public func evidenceRefusal(_ evidence: VerificationEvidence) -> Refusal? {
    if case .mismatch(let expected, let actual) = evidence.digest {
        return .digestMismatch(expected: expected, actual: actual)
    }
    switch evidence.signature {
    case .bad(let detail): return .badSignature(detail)
    case .untrusted(let detail): return .untrustedSigner(detail)
    case .absent, .trusted: break
    }
    if case .mismatch(let detail) = evidence.rootHashState { return .rootHashMismatch(detail) }
    return nil
}
