import Glibc

/// What `earlyext verify IMAGE` says about one image.
public struct ImageVerdict: Sendable {
    public enum Outcome: Equatable, Sendable {
        /// It would merge, verified this way.
        case accept(Verification.Kind)
        /// The policy refuses it, for this reason.
        case refuse(Refusal)
        /// It could not be checked (unreadable, I/O error, activation failed for another reason).
        case error(String)
    }

    public var path: String
    public var outcome: Outcome
    /// What was found and checked (kind `none` unless accepted).
    public var verification: Verification

    public var accepted: Bool { if case .accept = outcome { true } else { false } }

    /// One line: "accepted: signed (root hash …, signer …)", "refused: bad signature: …".
    public var reason: String {
        switch outcome {
        case .accept: "accepted: \(verification.summary)"
        case .refuse(let refusal): "refused: \(refusal)"
        case .error(let message): "error: \(message)"
        }
    }

    public var json: JSON {
        var fields: [(String, JSON)] = [("image", .string(path))]
        switch outcome {
        case .accept: fields.append(("verdict", "accept"))
        case .refuse(let refusal):
            fields.append(("verdict", "refuse"))
            fields.append(("refusal", .string(refusal.code)))
        case .error: fields.append(("verdict", "error"))
        }
        fields.append(("reason", .string(reason)))
        fields.append(("verification", verification.json))
        return .object(fields)
    }
}

/// Checks an image offline, for people building images: everything `merge` checks, in user
/// space, and more thoroughly:
/// - the GPT (or the sidecars), the verity superblock, the signature JSON;
/// - the PKCS#7 signature against `trust`;
/// - every data block and hash block against the root hash (a tampered block is found here,
///   where at boot the kernel would only fail the read of that block);
/// - the SHA-256, if `digest` asks for it.
///
/// dm-verity activation needs device-mapper and root. With `activate` (the default when both are
/// there) an image that passed is also activated and torn down again, so the kernel's own
/// signature check gets its say; otherwise the verdict notes that activation was not attempted.
public func verifyImage(path: String, policy: RequiredVerification, trust: TrustStore,
                        architecture: String, digest: DigestCheck = .none,
                        activate: Bool = DeviceMapper.available && getuid() == 0) -> ImageVerdict {
    var verification = Verification(kind: .none, format: .plain, policy: policy)
    func verdict(_ outcome: ImageVerdict.Outcome) -> ImageVerdict { ImageVerdict(path: path, outcome: outcome, verification: verification) }

    let inspected: InspectedImage
    do { inspected = try InspectedImage.inspect(path: path, architecture: architecture) } catch let error as RefusalError {
        return verdict(.refuse(error.refusal))
    } catch {
        return verdict(.error("\(error)"))
    }
    verification = Verification(kind: .none, format: inspected.format, policy: policy, designator: inspected.designator,
                                rootHash: inspected.verity.map { hexString($0.rootHash) }, notes: inspected.notes)
    if let refusal = preflightRefusal(policy: policy, hasVerity: inspected.verity != nil, hasSignature: inspected.signature != nil) {
        return verdict(.refuse(refusal))
    }
    var evidence = VerificationEvidence(rootHash: verification.rootHash)
    do { try VerifiedImage.checkDigest(digest, inspected, &evidence, &verification) } catch {
        return verdict(.error("\(error)"))
    }
    if let refusal = evidenceRefusal(evidence) { return verdict(.refuse(refusal)) }

    if let verity = inspected.verity {
        // The signature first (cheap), then the whole tree.
        if inspected.signature != nil {
            switch VerifiedImage.checkSignature(inspected, verity.rootHash, trust) {
            case .trusted(let signer, let fingerprint):
                evidence.signature = .trusted(signer: signer, fingerprint: fingerprint)
                verification.signer = signer
                verification.signerFingerprint = fingerprint
                verification.signatureCheckedBy = .userspace
            case .bad(let detail): evidence.signature = .bad(detail)
            case .untrusted(let detail): evidence.signature = .untrusted(detail)
            }
        }
        if let refusal = evidenceRefusal(evidence) {
            // Untrusted by verity.d, but the kernel's keyrings might trust it: let activation tell.
            if case .untrustedSigner = refusal, activate {
                return activationVerdict(path: path, policy: policy, trust: trust, architecture: architecture,
                                         digest: digest, verification: verification, userspace: refusal)
            }
            return verdict(.refuse(refusal))
        }
        do {
            try verity.layout.verifyAll(verity.parameters, rootHash: verity.rootHash)
            evidence.rootHashState = .matches
        } catch let error as VerityError {
            evidence.rootHashState = error.mismatch ? .mismatch(error.description) : .mismatch("malformed hash tree: \(error.description)")
        } catch let error as ImageFault {
            return verdict(.refuse(.malformed(error.description)))
        } catch {
            return verdict(.error("\(path): cannot read: \(error)"))
        }
    }
    switch decide(policy: policy, evidence: evidence) {
    case .refuse(let refusal): return verdict(.refuse(refusal))
    case .accept(let kind): verification.kind = kind
    }
    guard inspected.verity != nil else { return verdict(.accept(verification.kind)) }
    if activate {
        return activationVerdict(path: path, policy: policy, trust: trust, architecture: architecture,
                                 digest: digest, verification: verification, userspace: nil)
    }
    verification.notes.append(DeviceMapper.available
        ? "dm-verity activation not attempted (needs root); the data was checked in user space"
        : "dm-verity activation not attempted: this kernel has no device-mapper; the data was checked in user space")
    return verdict(.accept(verification.kind))
}

/// Activates the image (as `merge` would) and tears it down, folding the result into the verdict.
private func activationVerdict(path: String, policy: RequiredVerification, trust: TrustStore, architecture: String,
                               digest: DigestCheck, verification: Verification, userspace: Refusal?) -> ImageVerdict {
    var verification = verification
    let name = path.split(separator: "/").last.map { String($0.hasSuffix(".raw") ? $0.dropLast(4) : $0) } ?? path
    let candidate = Candidate(name: name, searchDir: "", entryPath: path, resolvedPath: path, kind: .raw)
    do {
        let opened = try VerifiedImage.open(candidate, policy: policy, trust: trust, architecture: architecture,
                                            digest: digest == .none ? .none : .verifiedAtFetch(verification.sha256 ?? ""))
        defer { opened.close() }
        let activated = opened.verification
        verification.kind = activated.kind
        verification.signer = activated.signer ?? verification.signer
        verification.signerFingerprint = activated.signerFingerprint ?? verification.signerFingerprint
        verification.signatureCheckedBy = activated.signatureCheckedBy ?? verification.signatureCheckedBy
        verification.notes += activated.notes.filter { !verification.notes.contains($0) }
        verification.notes.append("dm-verity activation: ok (\(opened.devicePath), torn down again)")
        return ImageVerdict(path: path, outcome: .accept(verification.kind), verification: verification)
    } catch let refusal as VerificationRefusal {
        return ImageVerdict(path: path, outcome: .refuse(refusal.refusal), verification: verification)
    } catch {
        if let userspace { return ImageVerdict(path: path, outcome: .refuse(userspace), verification: verification) }
        return ImageVerdict(path: path, outcome: .error("dm-verity activation failed: \(error)"), verification: verification)
    }
}
