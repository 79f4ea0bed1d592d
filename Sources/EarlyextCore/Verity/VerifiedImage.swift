import CShim
import Glibc

/// An image that was refused by verification: the reason, and what was learned before it.
public struct VerificationRefusal: Error, CustomStringConvertible, Sendable {
    /// The image path, as given.
    public var path: String
    public var refusal: Refusal
    public var policy: RequiredVerification

    public var description: String { "\(path): refused: \(refusal)" }
}

/// A SHA-256 the image must have (a selection's `SHA256=`).
public enum DigestCheck: Equatable, Sendable {
    case none
    /// Hash the whole image now and compare (lowercase or uppercase hex).
    case verify(expected: String)
    /// The fetch stage already checked this digest while downloading: record it, do not re-read.
    case verifiedAtFetch(String)
}

/// An image that passed verification, as a read-only block device the mount code can mount:
/// a dm-verity device (`/dev/dm-N`) for images with verity data, a loop device (or the block
/// device itself) for plain images where the policy allows them.
///
/// Lifetime: the device stays usable while this object lives. A dm-verity device is marked for
/// deferred removal as soon as it is set up, and this object holds it open; once it is mounted,
/// the mount holds it, and it disappears by itself when the last user goes (as loop devices with
/// autoclear do). So neither a failure nor a crash leaves a device-mapper device behind.
public final class VerifiedImage {
    /// The block device to mount: "/dev/dm-3", "/dev/loop7", or the candidate's block device.
    public let devicePath: String
    public let verification: Verification
    /// The device-mapper name ("earlyext-foo-3f2a9c01b4de"), for dm-verity devices.
    public let deviceMapperName: String?
    /// The loop devices under it ("/dev/loop7"), for the state record.
    public let loopDevices: [String]
    /// For DDIs: `.usr` means the filesystem holds the contents of /usr (not an extension root).
    public var designator: Designator? { verification.designator }
    /// The filesystem, when it was probed before the device was set up (plain images: the device
    /// shows the image's bytes as they are). nil: probe the device (dm-verity: only verified
    /// bytes are read).
    public let filesystem: ImageFilesystem?

    /// Descriptors that keep the device alive until it is mounted.
    private var holds: [OwnedDescriptor]

    init(devicePath: String, verification: Verification, deviceMapperName: String?, loopDevices: [String],
         holds: [OwnedDescriptor], filesystem: ImageFilesystem? = nil) {
        self.devicePath = devicePath
        self.filesystem = filesystem
        self.verification = verification
        self.deviceMapperName = deviceMapperName
        self.loopDevices = loopDevices
        self.holds = holds
    }

    /// A descriptor open on `devicePath` (for probing, or fsconfig by path while it is held).
    public var deviceDescriptor: Int32? { holds.first?.rawValue }

    /// Lets go of the device: call after it is mounted (the mount holds it then), or to give up.
    /// Unmounted, it goes away at once (deferred removal, autoclear).
    public func close() { holds.removeAll() }

    /// Verifies the candidate against the policy and sets up its device.
    ///
    /// - Plain image: no verity. Allowed under `any` only (and its SHA-256 checked if asked).
    /// - Sidecars or DDI: the top of the hash tree is checked against the root hash, the
    ///   signature (if any) by the kernel at activation when it can, else by OpenSSL against
    ///   `trust`, then dm-verity is activated read-only. The kernel checks every block as it is read.
    ///
    /// - Throws: `VerificationRefusal` when the policy refuses the image (with the reason), and
    ///   `EarlyextError` when something around it fails (no device-mapper, I/O errors). In both
    ///   cases nothing is left behind: no loop device, no device-mapper device.
    public static func open(_ candidate: Candidate, policy: RequiredVerification, trust: TrustStore,
                            architecture: String, digest: DigestCheck = .none) throws -> VerifiedImage {
        let path = candidate.resolvedPath
        func refuse(_ refusal: Refusal) -> VerificationRefusal {
            VerificationRefusal(path: candidate.entryPath, refusal: refusal, policy: policy)
        }
        let inspected: InspectedImage
        do { inspected = try InspectedImage.inspect(path: path, architecture: architecture) } catch let error as RefusalError {
            throw refuse(error.refusal)
        }
        if let refusal = preflightRefusal(policy: policy, hasVerity: inspected.verity != nil, hasSignature: inspected.signature != nil) {
            throw refuse(refusal)
        }
        var evidence = VerificationEvidence(rootHash: inspected.verity.map { hexString($0.rootHash) })
        var verification = Verification(kind: .none, format: inspected.format, policy: policy,
                                        designator: inspected.designator, rootHash: evidence.rootHash,
                                        notes: inspected.notes)
        try checkDigest(digest, inspected, &evidence, &verification)
        if let refusal = evidenceRefusal(evidence) { throw refuse(refusal) }

        guard let verity = inspected.verity else {
            // No verity: the policy allowed it (any), so the filesystem is mounted as it is.
            switch decide(policy: policy, evidence: evidence) {
            case .refuse(let refusal): throw refuse(refusal)
            case .accept(let kind): verification.kind = kind
            }
            return try openPlain(candidate, inspected, verification)
        }

        // The cheap structural check of the tree: its top block must hash to the root hash.
        do {
            try verity.layout.checkTop(verity.parameters, rootHash: verity.rootHash)
            evidence.rootHashState = .matches
        } catch let error as VerityError {
            evidence.rootHashState = .mismatch(error.description)
        } catch let error as ImageFault {
            throw refuse(.malformed(error.description))
        }
        if let refusal = evidenceRefusal(evidence) { throw refuse(refusal) }
        return try activate(candidate, inspected, verity, policy: policy, trust: trust,
                            evidence: evidence, verification: verification, refuse: refuse)
    }

    static func checkDigest(_ digest: DigestCheck, _ inspected: InspectedImage,
                            _ evidence: inout VerificationEvidence, _ verification: inout Verification) throws {
        switch digest {
        case .none: break
        case .verifiedAtFetch(let sha256):
            evidence.digest = .matches(sha256.lowercased())
            verification.sha256 = sha256.lowercased()
        case .verify(let expected):
            let actual = try sha256(of: inspected.image)
            verification.sha256 = actual
            evidence.digest = actual == expected.lowercased() ? .matches(actual) : .mismatch(expected: expected.lowercased(), actual: actual)
        }
    }

    /// SHA-256 of the whole image, read in 4 MiB pieces.
    static func sha256(of image: ImageReader) throws -> String {
        let hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 4 << 20)
        var offset: UInt64 = 0
        while offset < image.size {
            let count = Int(min(UInt64(buffer.count), image.size - offset))
            try buffer.withUnsafeMutableBytes { raw in
                let part = UnsafeMutableRawBufferPointer(rebasing: raw[0..<count])
                try image.readInto(part, offset: offset)
                hasher.update(UnsafeRawBufferPointer(part))
            }
            offset += UInt64(count)
        }
        return hasher.hexDigest()
    }

    /// A plain filesystem: the block device itself, or a loop device over the file (or over the
    /// DDI's data partition).
    private static func openPlain(_ candidate: Candidate, _ inspected: InspectedImage, _ verification: Verification) throws -> VerifiedImage {
        if candidate.kind == .block, inspected.format == .plain {
            let fd: FileDescriptor
            do { fd = try openPath(candidate.resolvedPath, O_RDONLY | O_NOCTTY) } catch {
                throw EarlyextError(.invalidImage, "\(candidate.entryPath): cannot open", errno: error)
            }
            return VerifiedImage(devicePath: candidate.resolvedPath, verification: verification, deviceMapperName: nil,
                                 loopDevices: [], holds: [OwnedDescriptor(fd)])
        }
        let data = inspected.data
        let filesystem = try ImageFilesystem.probe(data.reader.descriptor.rawValue, path: candidate.entryPath,
                                                   offset: data.offset, size: data.size)
        let loop = try attachLoop(data, entry: candidate.entryPath)
        return VerifiedImage(devicePath: loop.path, verification: verification, deviceMapperName: nil,
                             loopDevices: [loop.path], holds: [loop.hold], filesystem: filesystem)
    }

    /// A loop device over `region`, held by the returned descriptor (autoclear does the rest).
    static func attachLoop(_ region: ImageRegion, entry: String) throws -> (path: String, hold: OwnedDescriptor) {
        let whole = region.offset == 0 && region.size == region.reader.size
        do {
            let loop = try LoopDevice.attach(region.reader.descriptor.rawValue, name: region.reader.path,
                                             offset: region.offset, sizeLimit: whole ? 0 : region.size)
            let path = loop.path
            return (path, OwnedDescriptor(loop.take()))
        } catch {
            throw EarlyextError(.mount, "\(entry): cannot attach a loop device", errno: error)
        }
    }

    private static func activate(_ candidate: Candidate, _ inspected: InspectedImage,
                                 _ verity: (layout: VerityLayout, parameters: VerityParameters, rootHash: [UInt8]),
                                 policy: RequiredVerification, trust: TrustStore,
                                 evidence startEvidence: VerificationEvidence, verification start: Verification,
                                 refuse: (Refusal) -> VerificationRefusal) throws -> VerifiedImage {
        var evidence = startEvidence
        var verification = start
        let entry = candidate.entryPath
        guard DeviceMapper.prepare() else {
            throw EarlyextError(.mount, "\(entry): this kernel has no device-mapper (/dev/mapper/control is missing): dm-verity cannot be set up")
        }
        let data = try attachLoop(verity.layout.data, entry: entry)
        let hash = try attachLoop(verity.layout.hash, entry: entry)
        // libcryptsetup from here on: one image at a time (see DeviceMapper.serialized).
        return try DeviceMapper.serialized { () throws -> VerifiedImage in
            let context = try VerityContext(hashDevice: hash.path, dataDevice: data.path)
            // libcryptsetup read the same superblock: it must agree with earlyext's reading.
            if let theirs = context.parameters() {
                let ours = verity.parameters
                guard theirs.dataBlocks == ours.dataBlocks, theirs.dataBlockSize == UInt32(ours.dataBlockSize),
                      theirs.hashBlockSize == UInt32(ours.hashBlockSize), theirs.hashName.lowercased() == ours.algorithm,
                      theirs.saltSize == UInt32(ours.salt.count) else {
                    throw refuse(.malformed("libcryptsetup reads the verity superblock differently from earlyext"))
                }
            }
            let rootHashHex = hexString(verity.rootHash)

            // Try names until one is free (a merge being replaced may still hold the first).
            var userspaceCheck: SignatureCheck?
            func userspace() -> SignatureCheck {
                if let userspaceCheck { return userspaceCheck }
                let check = checkSignature(inspected, verity.rootHash, trust)
                userspaceCheck = check
                return check
            }
            var activatedName: String?
            var kernelChecked = false
            for attempt in 0..<16 {
                let name = DeviceMapper.deviceName(image: candidate.name, rootHash: rootHashHex, attempt: attempt)
                var result: Int32
                if let signature = inspected.signature {
                    result = context.activateSigned(name: name, rootHash: verity.rootHash, signature: signature.bytes)
                    switch -result {
                    case 0:
                        kernelChecked = true
                    case ENOKEY, EOPNOTSUPP:
                        // ENOKEY: the kernel checks signatures but its keyrings do not hold the
                        // signer's key. EOPNOTSUPP: this kernel cannot check dm-verity signatures
                        // (no CONFIG_DM_VERITY_VERIFY_ROOTHASH_SIG). Either way earlyext checks the
                        // signature against verity.d, and activates with the root hash only if it
                        // verifies. A signature that fails is never dropped for an unsigned activation.
                        switch userspace() {
                        case .trusted:
                            let why = -result == ENOKEY ? "the kernel's keyrings do not hold the signer's key"
                                                        : "this kernel cannot check dm-verity signatures"
                            verification.notes.append("signature checked in user space: \(why)")
                            result = context.activate(name: name, rootHash: verity.rootHash)
                        case .bad(let detail): throw refuse(.badSignature(detail))
                        case .untrusted(let detail): throw refuse(.untrustedSigner(detail))
                        }
                    case EKEYREJECTED:
                        throw refuse(.badSignature("the kernel rejected the signature"))
                    case EEXIST, EBUSY:
                        continue
                    default:
                        // libcryptsetup 2.6 does not pass the kernel's errno through: a kernel
                        // without the signer's key (ENOKEY, "Required key not available") comes back
                        // as ENODEV or EINVAL (seen in the QEMU suite). So whatever the kernel said,
                        // user space decides, against verity.d: a bad or untrusted signature is
                        // refused; a trusted one is activated with the root hash, as for ENOKEY.
                        // (If the kernel insists on checking signatures itself, that activation
                        // fails too.) Never an unsigned activation of a signed image.
                        switch userspace() {
                        case .bad(let detail): throw refuse(.badSignature(detail))
                        case .untrusted(let detail): throw refuse(.untrustedSigner(detail))
                        case .trusted:
                            verification.notes.append("signature checked in user space: the kernel did not accept it\(context.lastMessage)")
                            result = context.activate(name: name, rootHash: verity.rootHash)
                        }
                    }
                } else {
                    result = context.activate(name: name, rootHash: verity.rootHash)
                }
                if -result == EEXIST || -result == EBUSY { continue }
                guard result >= 0 else {
                    let requires = DeviceMapper.requiresSignatures && inspected.signature == nil
                        ? " (the kernel requires signed dm-verity devices: dm_verity.require_signatures)" : ""
                    throw EarlyextError(.mount, "\(entry): cannot activate dm-verity\(requires)\(context.lastMessage)", errno: Errno(rawValue: -result))
                }
                activatedName = name
                break
            }
            guard let name = activatedName else {
                throw EarlyextError(.mount, "\(entry): no free device-mapper name for earlyext-\(candidate.name)-…")
            }

            // From here on, any failure tears the device down at once.
            do {
                if inspected.signature != nil {
                    switch userspace() {
                    case .trusted(let signer, let fingerprint):
                        evidence.signature = .trusted(signer: signer, fingerprint: fingerprint)
                    case .untrusted where kernelChecked:
                        // Trusted by the kernel's keyrings, not by verity.d: the kernel's word counts.
                        evidence.signature = .trusted(signer: "(a key in the kernel's keyrings)", fingerprint: "")
                        verification.notes.append("the signer is trusted by the kernel's keyrings, not by verity.d")
                    case .untrusted(let detail):
                        throw refuse(.untrustedSigner(detail))
                    case .bad(let detail):
                        // The kernel accepted what user space calls bad: refuse rather than guess.
                        throw refuse(.badSignature(detail))
                    }
                    verification.signatureCheckedBy = kernelChecked ? .kernel : .userspace
                }
                switch decide(policy: policy, evidence: evidence) {
                case .refuse(let refusal): throw refuse(refusal)
                case .accept(let kind): verification.kind = kind
                }
                if case .trusted(let signer, let fingerprint) = evidence.signature {
                    verification.signer = signer
                    verification.signerFingerprint = fingerprint.isEmpty ? nil : fingerprint
                }
                guard let node = DeviceMapper.node(named: name) ?? (access("/dev/mapper/\(name)", F_OK) == 0 ? "/dev/mapper/\(name)" : nil) else {
                    throw EarlyextError(.mount, "\(entry): dm-verity device \(name) was created, but its /dev node is missing")
                }
                let fd: FileDescriptor
                do { fd = try openPath(node, O_RDONLY | O_NOCTTY) } catch {
                    throw EarlyextError(.mount, "\(entry): cannot open \(node)", errno: error as? Errno)
                }
                // Removed by the kernel when the last user (this descriptor, later the mount) goes.
                let deferred = context.deactivate(name: name, deferred: true)
                guard deferred >= 0 else {
                    throw EarlyextError(.mount, "\(entry): cannot mark \(name) for deferred removal\(context.lastMessage)", errno: Errno(rawValue: -deferred))
                }
                return VerifiedImage(devicePath: node, verification: verification, deviceMapperName: name,
                                     loopDevices: [data.path, hash.path], holds: [OwnedDescriptor(fd)])
            } catch {
                context.deactivate(name: name, deferred: false)
                throw error
            }
        }
    }

    /// The user-space check, with the certificateFingerprint claim held to the actual signer.
    static func checkSignature(_ inspected: InspectedImage, _ rootHash: [UInt8], _ trust: TrustStore) -> SignatureCheck {
        guard let signature = inspected.signature else { return .bad("no signature") }
        let check = checkRootHashSignature(signature.bytes, rootHash: rootHash, trust: trust)
        if case .trusted(_, let actual) = check, let claimed = inspected.claimedFingerprint, claimed != actual {
            return .bad("the signature partition names certificate \(claimed), but the signer is \(actual)")
        }
        return check
    }

}

/// The refusals that need nothing but the image's structure: a policy that needs verity data or a
/// signature the image does not have. (`decide` gives the same answers; this just lets earlyext
/// stop before reading the whole image.)
public func preflightRefusal(policy: RequiredVerification, hasVerity: Bool, hasSignature: Bool) -> Refusal? {
    switch policy {
    case .signed where !hasVerity || !hasSignature: .noSignature
    case .verity where !hasVerity: .noVerity
    default: nil
    }
}
