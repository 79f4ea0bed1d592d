import CShim
import Glibc

/// The hierarchies a sysext may extend, in the order they are merged.
public let extensionHierarchies = ["/usr", "/opt"]

/// The top layer of every merge: a small tmpfs carrying `.systemd-sysext/extensions` (the names,
/// one per line, bottom to top) and `.systemd-sysext/dev` (the overlay's major:minor), exactly as
/// systemd-sysext writes them, so that `systemd-sysext status` recognises the merge.
/// Later stages (kernel module indexes, hwdb) add their files here before it is sealed.
public final class MetadataLayer {
    public let mount: DetachedMount
    /// The metadata directory's name, shared with systemd-sysext.
    public static let directory = ".systemd-sysext"

    public init(extensions: [String]) throws {
        do {
            let context = try FilesystemContext(type: "tmpfs")
            try context.set("mode", "0755")
            try context.set("size", "4m")
            try context.set("nr_inodes", "4096")
            mount = try context.mount(attributes: [.noDevices, .noSetuid, .noExec], label: "earlyext metadata")
            try makeDirectory(at: mount.rawValue, Self.directory)
            try writeTextFile(at: mount.rawValue, Self.directory + "/extensions",
                              extensions.map { $0 + "\n" }.joined())
        } catch {
            throw EarlyextError.wrapping(error, .mount, "cannot create the metadata layer")
        }
    }

    /// Records the overlay's device number, then makes the layer read-only.
    /// Must run after the overlay is created and before it becomes visible.
    func seal(overlayDevice: dev_t) throws {
        do {
            try writeTextFile(at: mount.rawValue, Self.directory + "/dev",
                              "\(ee_major(overlayDevice)):\(ee_minor(overlayDevice))\n")
            try mount.setAttributes([.readOnly])
        } catch {
            throw EarlyextError.wrapping(error, .mount, "cannot seal the metadata layer")
        }
    }
}

/// Builds one detached overlay for a hierarchy from open directories, with overlayfs `lowerdir+`
/// (one fsconfig call per layer, so the page-size limit on mount data that stops systemd-sysext
/// 252 at 128 images does not apply).
public enum OverlayBuilder {
    /// `layers` are from top to bottom: metadata, the extensions from highest to lowest version,
    /// and last the base hierarchy. Each is an `O_PATH` directory descriptor.
    public static func build(hierarchy: String, metadata: MetadataLayer, extensionLayers: [OwnedDescriptor],
                             base: borrowing FileDescriptor) throws -> DetachedMount {
        let context = try overlayContext(hierarchy)
        let metaDir = try open(metadata.mount, hierarchy)
        var layerPaths = [metaDir.procPath]
        layerPaths += extensionLayers.map { $0.procPath }
        layerPaths.append(base.procPath)
        for (index, path) in layerPaths.enumerated() {
            do {
                try context.set("lowerdir+", path)
            } catch {
                let detail = context.kernelMessages()
                throw EarlyextError(.mount, "\(hierarchy): overlayfs refused layer \(index + 1) of \(layerPaths.count)"
                                    + (detail.isEmpty ? "" : " (\(detail))"), errno: error)
            }
        }
        let overlay: DetachedMount
        do {
            overlay = try context.mount(attributes: [.readOnly, .noDevices], label: "overlay for \(hierarchy)")
        } catch {
            let detail = context.kernelMessages()
            throw EarlyextError(.mount, "\(hierarchy): cannot create the overlay" + (detail.isEmpty ? "" : " (\(detail))"),
                                errno: error)
        }
        do {
            try metadata.seal(overlayDevice: try statDescriptor(overlay.rawValue).st_dev)
        } catch {
            throw EarlyextError.wrapping(error, .mount, "\(hierarchy): cannot stat the new overlay")
        }
        return overlay
    }

    static func overlayContext(_ hierarchy: String) throws -> FilesystemContext {
        do {
            let context = try FilesystemContext(type: "overlay")
            try context.set("source", "earlyext")
            return context
        } catch {
            throw EarlyextError(.mount, "\(hierarchy): the kernel has no overlayfs support", errno: error)
        }
    }

    static func open(_ metadata: DetachedMount, _ hierarchy: String) throws -> FileDescriptor {
        do { return try metadata.openDirectory("") } catch {
            throw EarlyextError(.mount, "\(hierarchy): cannot open the metadata layer", errno: error)
        }
    }
}
