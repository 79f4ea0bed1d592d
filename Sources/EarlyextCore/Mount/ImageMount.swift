import CShim
import Glibc

/// An extension opened for merging: a read-only detached mount of its root, whatever it came
/// from. Holding it keeps the loop device (autoclear) and the superblock alive; dropping it
/// releases both.
public final class OpenedExtension {
    public let name: String
    public let mount: DetachedMount
    /// "squashfs", "erofs", "ext4", "btrfs" or "directory".
    public let format: String
    /// The loop device the image is attached to, if any ("/dev/loop7").
    public let loopDevice: String?
    /// The mount's root is the image's /usr (a DDI's `usr` partition), not an extension root.
    public internal(set) var usrRoot = false

    /// The directory in the mount that is the extension's `hierarchy` ("/usr" → "usr"), or nil
    /// if the image cannot have it.
    func directory(for hierarchy: String) -> String? {
        if usrRoot { return hierarchy == "/usr" ? "" : nil }
        return String(hierarchy.dropFirst())
    }

    init(name: String, mount: DetachedMount, format: String, loopDevice: String?) {
        self.name = name
        self.mount = mount
        self.format = format
        self.loopDevice = loopDevice
    }

    /// Opens the candidate: a directory becomes a read-only clone; a `.raw` file is attached to a
    /// loop device and mounted with the new mount API; a block device is mounted directly.
    public static func open(_ candidate: Candidate) throws -> OpenedExtension {
        switch candidate.kind {
        case .directory:
            return try openDirectory(candidate)
        case .raw, .block:
            return try openImage(candidate)
        }
    }

    static func openDirectory(_ candidate: Candidate) throws -> OpenedExtension {
        do {
            let clone = try DetachedMount.clone(candidate.resolvedPath, recursive: true)
            try clone.setAttributes([.readOnly, .noDevices])
            return OpenedExtension(name: candidate.name, mount: clone, format: "directory", loopDevice: nil)
        } catch {
            throw EarlyextError.wrapping(error, .mount, "\(candidate.entryPath): cannot clone directory")
        }
    }

    static func openImage(_ candidate: Candidate) throws -> OpenedExtension {
        let path = candidate.resolvedPath
        let image = try openImageFile(path, entry: candidate.entryPath)
        let fstype = try ImageFilesystem.probe(image.rawValue, path: candidate.entryPath)
        if candidate.kind == .block {
            let mount = try mountFilesystem(fstype, source: path, entry: candidate.entryPath)
            return OpenedExtension(name: candidate.name, mount: mount, format: fstype.rawValue, loopDevice: nil)
        }
        let loop = try attachLoop(image, path: path, entry: candidate.entryPath)
        let mount = try mountFilesystem(fstype, source: loop.path, entry: candidate.entryPath)
        // The mount now holds the loop device; our descriptors can go (autoclear does the rest).
        return OpenedExtension(name: candidate.name, mount: mount, format: fstype.rawValue, loopDevice: loop.path)
    }

    static func openImageFile(_ path: String, entry: String) throws -> FileDescriptor {
        do { return try openPath(path, O_RDONLY | O_NOCTTY) } catch {
            throw EarlyextError(.invalidImage, "\(entry): cannot open", errno: error)
        }
    }

    static func attachLoop(_ image: borrowing FileDescriptor, path: String, entry: String) throws -> LoopDevice {
        do { return try LoopDevice.attach(image.rawValue, name: path) } catch {
            throw EarlyextError(.mount, "\(entry): cannot attach a loop device", errno: error)
        }
    }

    static func filesystemContext(_ fstype: ImageFilesystem, entry: String) throws -> FilesystemContext {
        do { return try FilesystemContext(type: fstype.rawValue) } catch {
            throw EarlyextError(.mount, "\(entry): the kernel has no \(fstype.rawValue) support", errno: error)
        }
    }

    /// fsopen/fsconfig/fsmount of a block device, read-only and nodev. The "ro" flag must be set
    /// before FSCONFIG_CMD_CREATE, or a read-only loop device gives EACCES.
    static func mountFilesystem(_ fstype: ImageFilesystem, source: String, entry: String) throws -> DetachedMount {
        let context = try filesystemContext(fstype, entry: entry)
        do {
            try context.set("source", source)
            try context.set(flag: "ro")
        } catch {
            throw EarlyextError(.mount, "\(entry): cannot configure \(fstype.rawValue) mount", errno: error)
        }
        do {
            return try context.mount(attributes: [.readOnly, .noDevices], label: "\(fstype.rawValue) on \(source)")
        } catch {
            let detail = context.kernelMessages()
            let suffix = detail.isEmpty ? "" : " (\(detail))"
            throw EarlyextError(.invalidImage, "\(entry): cannot mount \(fstype.rawValue)\(suffix)", errno: error)
        }
    }
}
