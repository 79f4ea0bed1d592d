import CShim
import Glibc

/// The top layer of every merge. A small private tmpfs holds two directories:
/// - `layer/`: the layer itself. It carries `.systemd-sysext/extensions` (the merged names, one per
///   line, bottom to top) and `.systemd-sysext/dev` (the overlay's major:minor), exactly as
///   systemd-sysext writes them, so that `systemd-sysext status` recognises the merge. Generated
///   files for the merged tree go here too: kernel module indexes, hwdb.bin.
/// - `work/`: overlayfs's work directory, for the writable staging overlay that generates those
///   files (`upperdir=layer`). It is not part of the merge.
public final class MetadataLayer {
    public let mount: DetachedMount
    /// The metadata directory's name, shared with systemd-sysext.
    public static let directory = ".systemd-sysext"
    static let layer = "layer"
    static let work = "work"

    /// `base` is the hierarchy's base directory: the layer's root takes its mode and owner, since
    /// the top layer's root is what the merged hierarchy shows (as systemd ≥ 256 does).
    public init(extensions: [String], like base: borrowing FileDescriptor) throws {
        do {
            let st = try statDescriptor(base.rawValue)
            let context = try FilesystemContext(type: "tmpfs")
            try context.set("mode", "0700")
            // Module indexes for a full kernel are a few MiB; tmpfs only uses what is written.
            try context.set("size", "256m")
            try context.set("nr_inodes", "65536")
            mount = try context.mount(attributes: [.noDevices, .noSetuid, .noExec], label: "earlyext metadata")
            try makeDirectory(at: mount.rawValue, Self.work, mode: 0o700)
            try makeDirectory(at: mount.rawValue, Self.layer, mode: 0o755)
            _ = try valueOrErrno { fchmodat(mount.rawValue, Self.layer, st.st_mode & 0o7777, 0) }
            _ = try valueOrErrno { fchownat(mount.rawValue, Self.layer, st.st_uid, st.st_gid, 0) }
            try makeDirectory(at: mount.rawValue, Self.layer + "/" + Self.directory)
            try writeTextFile(at: mount.rawValue, Self.layer + "/" + Self.directory + "/extensions",
                              extensions.map { $0 + "\n" }.joined())
        } catch {
            throw EarlyextError.wrapping(error, .mount, "cannot create the metadata layer")
        }
    }


    /// Writes a file into the layer (relative to the hierarchy's root), creating its directories.
    func write(_ relative: String, bytes: [UInt8], mode: mode_t = 0o644) throws {
        let path = Self.layer + "/" + relative
        if let slash = path.lastIndex(of: "/") {
            try makeDirectories(at: mount.rawValue, String(path[..<slash]))
        }
        let fd = try openAt(mount.rawValue, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode: mode)
        try writeAll(fd.rawValue, bytes)
    }

    /// Records the overlay's device number, then makes the layer read-only.
    /// Must run after the overlay is created and before it becomes visible.
    func seal(overlayDevice: dev_t) throws {
        do {
            try writeTextFile(at: mount.rawValue, Self.layer + "/" + Self.directory + "/dev",
                              "\(ee_major(overlayDevice)):\(ee_minor(overlayDevice))\n")
            try mount.setAttributes([.readOnly])
        } catch {
            throw EarlyextError.wrapping(error, .mount, "cannot seal the metadata layer")
        }
    }
}
