/// How one image was verified: what `plan`, `list`, `status` and the state record show.
public struct Verification: Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// Nothing proven (a plain image under `Require=any`).
        case none
        /// The whole file matched an expected SHA-256 (a selection's `SHA256=`).
        case digest
        /// dm-verity with a root hash; no signature.
        case verity
        /// dm-verity with a root hash signed by a trusted certificate.
        case signed
    }

    /// Where the image's verity data came from.
    public enum Format: String, Sendable {
        /// A filesystem image, no verity data.
        case plain
        /// A filesystem image with `NAME.roothash` (+ `.roothash.p7s`) and `NAME.verity` beside it.
        case sidecar
        /// A GPT disk image (Discoverable Partitions Specification).
        case ddi
        /// A directory extension: nothing to verify (allowed under `Require=any` only).
        case directory
    }

    /// Who checked the signature.
    public enum Checker: String, Sendable {
        /// The kernel, at activation (crypt_activate_by_signed_key): its keyrings are the trust.
        case kernel
        /// earlyext, with OpenSSL, against the certificates in verity.d.
        case userspace
    }

    public var kind: Kind
    public var format: Format
    /// The policy the image was held to.
    public var policy: RequiredVerification
    /// DDI only: which partition set was used.
    public var designator: Designator?
    /// Lowercase hex.
    public var rootHash: String?
    /// The signer's subject ("/CN=Example Vendor").
    public var signer: String?
    /// SHA-256 of the signer certificate's DER encoding, lowercase hex.
    public var signerFingerprint: String?
    public var signatureCheckedBy: Checker?
    /// The SHA-256 of the whole image, when it was computed (lowercase hex).
    public var sha256: String?
    /// Things worth saying that are not refusals ("dm-verity activation not attempted: …").
    public var notes: [String]

    public init(kind: Kind, format: Format, policy: RequiredVerification, designator: Designator? = nil,
                rootHash: String? = nil, signer: String? = nil, signerFingerprint: String? = nil,
                signatureCheckedBy: Checker? = nil, sha256: String? = nil, notes: [String] = []) {
        self.kind = kind
        self.format = format
        self.policy = policy
        self.designator = designator
        self.rootHash = rootHash
        self.signer = signer
        self.signerFingerprint = signerFingerprint
        self.signatureCheckedBy = signatureCheckedBy
        self.sha256 = sha256
        self.notes = notes
    }

    /// For the state record and `--json` (fields in a fixed order; absent values left out).
    public var json: JSON {
        var fields: [(String, JSON)] = [
            ("kind", .string(kind.rawValue)),
            ("format", .string(format.rawValue)),
            ("policy", .string(policy.rawValue)),
        ]
        if let designator { fields.append(("partition", .string(designator.rawValue))) }
        if let rootHash { fields.append(("root_hash", .string(rootHash))) }
        if let signer { fields.append(("signer", .string(signer))) }
        if let signerFingerprint { fields.append(("signer_fingerprint", .string(signerFingerprint))) }
        if let signatureCheckedBy { fields.append(("signature_checked_by", .string(signatureCheckedBy.rawValue))) }
        if let sha256 { fields.append(("sha256", .string(sha256))) }
        if !notes.isEmpty { fields.append(("notes", .array(notes.map(JSON.string)))) }
        return .object(fields)
    }

    /// One line for `plan`, `list` and `status`: "signed (root hash 3f2a…9c01, signer /CN=Vendor, kernel)".
    public var summary: String {
        var details: [String] = []
        if let rootHash { details.append("root hash \(abbreviate(rootHash))") }
        if let signer { details.append("signer \(signer)") }
        if let signatureCheckedBy { details.append("checked by \(signatureCheckedBy.rawValue)") }
        if kind == .digest, let sha256 { details.append("sha256 \(abbreviate(sha256))") }
        details.append("policy \(policy.rawValue)")
        return "\(kind.rawValue) (\(details.joined(separator: ", ")))"
    }

    private func abbreviate(_ hex: String) -> String {
        hex.count > 16 ? "\(hex.prefix(8))…\(hex.suffix(8))" : hex
    }
}
