import Glibc

/// An extension opened through verification: the detached mount the merge uses, and how it was
/// verified (for the plan, the state record and `status`).
public struct VerifiedExtension {
    public let opened: OpenedExtension
    public let verification: Verification
    /// What was mounted: "/dev/dm-3" (dm-verity), "/dev/loop7", the block device, or nil for a
    /// directory.
    public let devicePath: String?
    /// "earlyext-foo-3f2a9c01b4de" for dm-verity devices.
    public let deviceMapperName: String?
    /// The loop devices under it.
    public let loopDevices: [String]
    /// For DDIs. `.usr`: the mounted filesystem is the contents of /usr, not an extension root
    /// (its release file is `lib/extension-release.d/…`, and it is the /usr layer as it is).
    public var designator: Designator? { verification.designator }
}

extension OpenedExtension {
    /// Opens the candidate as `open(_:)` does, but through verification first (docs/verity.md):
    /// the image must satisfy `policy`, and is mounted from the device verification set up (a
    /// dm-verity device when it has verity data). A directory passes only under `Require=any`.
    ///
    /// - Throws: `VerificationRefusal` (refused by the policy, with the reason) or `EarlyextError`.
    ///   Nothing is left behind either way.
    public static func openVerified(_ candidate: Candidate, policy: RequiredVerification, trust: TrustStore,
                                    architecture: String, digest: DigestCheck = .none) throws -> VerifiedExtension {
        if candidate.kind == .directory {
            if let refusal = preflightRefusal(policy: policy, hasVerity: false, hasSignature: false) {
                throw VerificationRefusal(path: candidate.entryPath, refusal: refusal, policy: policy)
            }
            let opened = try openDirectory(candidate)
            return VerifiedExtension(opened: opened, verification: Verification(kind: .none, format: .directory, policy: policy),
                                     devicePath: nil, deviceMapperName: nil, loopDevices: [])
        }
        let verified = try VerifiedImage.open(candidate, policy: policy, trust: trust, architecture: architecture, digest: digest)
        defer { verified.close() } // the mount holds the device from here on
        guard let fd = verified.deviceDescriptor else {
            throw EarlyextError(.mount, "\(candidate.entryPath): the verified device is gone")
        }
        let fstype = try verified.filesystem ?? ImageFilesystem.probe(fd, path: candidate.entryPath)
        let mount = try mountFilesystem(fstype, source: verified.devicePath, entry: candidate.entryPath)
        let opened = OpenedExtension(name: candidate.name, mount: mount, format: fstype.rawValue,
                                     loopDevice: verified.loopDevices.first)
        return VerifiedExtension(opened: opened, verification: verified.verification, devicePath: verified.devicePath,
                                 deviceMapperName: verified.deviceMapperName, loopDevices: verified.loopDevices)
    }
}
