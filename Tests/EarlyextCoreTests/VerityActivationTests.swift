import Foundation
import Glibc
import Testing
@testable import EarlyextCore

/// Loop devices whose backing file is `path` (from /sys/block/loop*/loop/backing_file).
func loopsBacking(_ path: String) -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/sys/block") else { return [] }
    return names.filter { $0.hasPrefix("loop") }.filter { name in
        let file = (try? String(contentsOfFile: "/sys/block/\(name)/loop/backing_file", encoding: .utf8)) ?? ""
        return file.trimmingCharacters(in: .whitespacesAndNewlines) == path
    }.sorted()
}

/// device-mapper devices whose name starts with `prefix`.
func deviceMapperDevices(_ prefix: String = "earlyext-") -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/sys/block") else { return [] }
    return names.filter { $0.hasPrefix("dm-") }.compactMap { name in
        let dm = (try? String(contentsOfFile: "/sys/block/\(name)/dm/name", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return dm.hasPrefix(prefix) ? dm : nil
    }
}

/// Waits (up to 3 s) for `condition`: loop autoclear and deferred dm removal finish shortly
/// after the last close.
func eventually(_ condition: () -> Bool) -> Bool {
    for _ in 0..<300 {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

private func candidate(_ path: String, kind: EntryKind = .raw) -> Candidate {
    let base = path.split(separator: "/").last.map(String.init) ?? path
    let name = base.hasSuffix(".raw") ? String(base.dropLast(4)) : base
    return Candidate(name: name, searchDir: "/etc/extensions", entryPath: "/etc/extensions/\(base)", resolvedPath: path, kind: kind)
}

/// Reads a file inside a detached mount.
private func readInside(_ mount: DetachedMount, _ path: String) throws -> [UInt8] {
    let fd = try openAt(mount.rawValue, path, O_RDONLY)
    return try readAll(fd.rawValue, limit: 64 << 20)
}

/// The activation side: loop devices, libcryptsetup, the mount entry point. Teardown is checked
/// after every case: no loop device and no device-mapper device may stay behind.
@Suite(.enabled(if: Sandbox.isRoot, "needs root: loop devices and mounts (skipped when not root)"), .serialized)
struct VerityActivationTests {
    let f = VerityFixtures.shared

    @Test func plainImageUnderAny() throws {
        let w = try VerityWorkspace()
        let image = try w.copy(f.part("usr", "data.img"), to: "p.raw")
        var opened: VerifiedExtension? = try OpenedExtension.openVerified(candidate(image), policy: .any, trust: .empty, architecture: "x86-64")
        #expect(opened?.verification.kind == Verification.Kind.none)
        #expect(opened?.verification.format == .plain)
        #expect(opened?.opened.format == "squashfs")
        #expect(opened?.deviceMapperName == nil)
        #expect(loopsBacking(image).count == 1)
        let payload = try readInside(opened!.opened.mount, "share/usr/payload")
        #expect(payload.count == 1 << 20)
        opened = nil
        #expect(eventually { loopsBacking(image).isEmpty })
    }

    @Test func plainImageDigest() throws {
        let w = try VerityWorkspace()
        let image = try w.copy(f.part("usr", "data.img"), to: "p.raw")
        let sha = try w.shell("sha256sum p.raw | cut -d' ' -f1")
        let opened = try OpenedExtension.openVerified(candidate(image), policy: .any, trust: .empty, architecture: "x86-64",
                                                      digest: .verify(expected: sha))
        #expect(opened.verification.kind == .digest)
        #expect(opened.verification.sha256 == sha)
        #expect(throws: VerificationRefusal.self) {
            try OpenedExtension.openVerified(candidate(image), policy: .any, trust: .empty, architecture: "x86-64",
                                             digest: .verify(expected: String(repeating: "1", count: 64)))
        }
    }

    /// A DDI without verity: the loop device covers just the data partition.
    @Test func plainDDIPartition() throws {
        let w = try VerityWorkspace()
        try w.shell("make_ddi d.raw x86-64 root '\(f.part("root", "data.img"))'")
        let image = w.path("d.raw")
        var opened: VerifiedExtension? = try OpenedExtension.openVerified(candidate(image), policy: .any, trust: .empty, architecture: "x86-64")
        #expect(opened?.verification.format == .ddi)
        #expect(opened?.verification.designator == .root)
        let loops = loopsBacking(image)
        #expect(loops.count == 1)
        if let loop = loops.first {
            let offset = try String(contentsOfFile: "/sys/block/\(loop)/loop/offset", encoding: .utf8)
            #expect(offset.trimmingCharacters(in: .whitespacesAndNewlines) == String(2048 * 512))
        }
        #expect(try readInside(opened!.opened.mount, "usr/lib/extension-release.d/extension-release.root").count > 0)
        opened = nil
        #expect(eventually { loopsBacking(image).isEmpty })
    }

    @Test(arguments: [RequiredVerification.verity, .signed])
    func policyRefusesPlainImageBeforeAnyDevice(_ policy: RequiredVerification) throws {
        let w = try VerityWorkspace()
        let image = try w.copy(f.part("usr", "data.img"), to: "p.raw")
        do {
            _ = try OpenedExtension.openVerified(candidate(image), policy: policy, trust: .empty, architecture: "x86-64")
            Issue.record("a plain image was accepted under \(policy)")
        } catch let refusal as VerificationRefusal {
            #expect(refusal.refusal == (policy == .signed ? .noSignature : .noVerity))
            #expect(refusal.description.hasPrefix("/etc/extensions/p.raw: refused: "))
        }
        #expect(loopsBacking(image).isEmpty)
    }

    @Test func directories() throws {
        let root = try Fixture()
        try root.file("ext/usr/lib/extension-release.d/extension-release.ext", "ID=_any\n")
        let c = candidate(root.path("ext"), kind: .directory)
        let opened = try OpenedExtension.openVerified(c, policy: .any, trust: .empty, architecture: "x86-64")
        #expect(opened.verification.format == .directory)
        #expect(opened.verification.kind == .none)
        #expect(throws: VerificationRefusal.self) {
            try OpenedExtension.openVerified(c, policy: .verity, trust: .empty, architecture: "x86-64")
        }
    }

    /// Refusals found before activation leave nothing behind.
    @Test func refusalsLeaveNothing() throws {
        let w = try VerityWorkspace()
        let image = try w.copy(f.usrDDI, to: "u.raw")
        for trust in [TrustStore.empty, try f.trust(["rogue"])] {
            do {
                _ = try OpenedExtension.openVerified(candidate(image), policy: .any, trust: trust, architecture: "x86-64")
                // With device-mapper, the kernel's keyrings could in principle trust the signer.
                #expect(DeviceMapper.available, "an untrusted signature was accepted")
            } catch let refusal as VerificationRefusal {
                #expect(refusal.refusal.code == "untrusted-signer")
            } catch {
                // No device-mapper here: that is said, and nothing was set up.
                #expect(!DeviceMapper.available)
                #expect("\(error)".contains("no device-mapper"))
            }
            #expect(eventually { loopsBacking(image).isEmpty })
            #expect(eventually { deviceMapperDevices().isEmpty })
        }
    }

    /// Without device-mapper (this host), a signed image fails with that reason, and is never
    /// mounted unverified.
    @Test(.enabled(if: !DeviceMapper.available, "this kernel has device-mapper"))
    func noDeviceMapper() throws {
        let w = try VerityWorkspace()
        let image = try w.copy(f.usrDDI, to: "u.raw")
        for policy in RequiredVerification.allCases {
            do {
                _ = try OpenedExtension.openVerified(candidate(image), policy: policy, trust: try f.trust(["ca"]), architecture: "x86-64")
                Issue.record("a verity image was opened without device-mapper under \(policy)")
            } catch let error as EarlyextError {
                #expect(error.message.contains("this kernel has no device-mapper"))
            }
            #expect(loopsBacking(image).isEmpty)
        }
    }

    /// libcryptsetup reads the same superblock as earlyext (crypt_load needs no device-mapper).
    @Test func libcryptsetupAgrees() throws {
        let w = try VerityWorkspace()
        let image = try w.copy(f.usrDDI, to: "u.raw")
        let inspected = try InspectedImage.inspect(path: image, architecture: "x86-64")
        let verity = try #require(inspected.verity)
        do {
            let data = try VerifiedImage.attachLoop(verity.layout.data, entry: "u.raw")
            let hash = try VerifiedImage.attachLoop(verity.layout.hash, entry: "u.raw")
            let context = try VerityContext(hashDevice: hash.path, dataDevice: data.path)
            let theirs = try #require(context.parameters())
            #expect(theirs.dataBlocks == verity.parameters.dataBlocks)
            #expect(theirs.dataBlockSize == UInt32(verity.parameters.dataBlockSize))
            #expect(theirs.hashBlockSize == UInt32(verity.parameters.hashBlockSize))
            #expect(theirs.hashName == verity.parameters.algorithm)
            #expect(theirs.saltSize == UInt32(verity.parameters.salt.count))
            #expect(loopsBacking(image).count == 2)
        }
        #expect(eventually { loopsBacking(image).isEmpty })
        // Not a verity superblock: libcryptsetup refuses too, with its message.
        let plain = try w.copy(f.part("usr", "data.img"), to: "p.raw")
        let region = ImageRegion.whole(try ImageReader.open(plain))
        let loop = try VerifiedImage.attachLoop(region, entry: "p.raw")
        #expect(throws: EarlyextError.self) { try VerityContext(hashDevice: loop.path, dataDevice: loop.path) }
    }

    // MARK: With device-mapper (the QEMU suite; skipped on hosts without it)

    @Test(.enabled(if: DeviceMapper.available, "no device-mapper in this kernel: the QEMU suite covers activation"))
    func signedDDIActivates() throws {
        let w = try VerityWorkspace()
        let image = try w.copy(f.usrDDI, to: "u.raw")
        var opened: VerifiedExtension? = try OpenedExtension.openVerified(candidate(image), policy: .signed,
                                                                          trust: try f.trust(["ca"]), architecture: "x86-64")
        let name = try #require(opened?.deviceMapperName)
        #expect(name.hasPrefix("earlyext-u-\(f.usrRootHash.prefix(12))"))
        #expect(opened?.verification.kind == .signed)
        #expect(opened?.verification.designator == .usr)
        #expect(deviceMapperDevices() == [name])
        #expect(try readInside(opened!.opened.mount, "share/usr/payload").count == 1 << 20)
        opened = nil
        #expect(eventually { deviceMapperDevices().isEmpty })
        #expect(eventually { loopsBacking(image).isEmpty })
    }

    @Test(.enabled(if: DeviceMapper.available, "no device-mapper in this kernel: the QEMU suite covers activation"))
    func tamperedDataFailsOnRead() throws {
        let w = try VerityWorkspace()
        let image = try w.copy(f.usrDDI, to: "u.raw")
        // A byte in the middle of the payload: the top of the tree still matches, so activation
        // succeeds; the kernel refuses the block when it is read.
        try w.flip(image, at: try w.partitions(image)[1]!.offset + 512 * 1024 + 17)
        var opened: VerifiedExtension? = try OpenedExtension.openVerified(candidate(image), policy: .verity,
                                                                          trust: try f.trust(["ca"]), architecture: "x86-64")
        #expect(throws: Errno(rawValue: EIO)) { _ = try readInside(opened!.opened.mount, "share/usr/payload") }
        opened = nil
        #expect(eventually { deviceMapperDevices().isEmpty })
    }
}
