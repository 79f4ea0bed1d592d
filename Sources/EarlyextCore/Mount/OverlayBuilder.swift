import CShim
import Glibc

/// The hierarchies a sysext may extend, in the order they are merged.
public let extensionHierarchies = ["/usr", "/opt"]

/// Builds detached overlays with overlayfs `lowerdir+`: one fsconfig call per layer, so the
/// page-size limit on mount data that stops systemd-sysext 252 at 128 images does not apply.
public enum OverlayBuilder {
    /// The merge: read-only, `nodev`. Layers from the top: the metadata layer, the extensions
    /// (`extensionLayers`, highest version first), and last the base: paths of staged layers
    /// (`LayerStage`). Seals the metadata layer with the overlay's device number.
    static func build(hierarchy: String, metadata: MetadataLayer, metadataPath: String, extensionLayers: [String],
                      base: String) throws -> DetachedMount {
        let context = try overlayContext(hierarchy, lower: [metadataPath + "/" + MetadataLayer.layer] + extensionLayers + [base])
        let overlay: DetachedMount
        do {
            overlay = try context.mount(attributes: [.readOnly, .noDevices], label: "overlay for \(hierarchy)")
        } catch {
            throw failure(hierarchy, "cannot create the overlay", context, error)
        }
        do {
            try metadata.seal(overlayDevice: try statDescriptor(overlay.rawValue).st_dev)
        } catch {
            throw EarlyextError.wrapping(error, .mount, "\(hierarchy): cannot stat the new overlay")
        }
        return overlay
    }

    /// A writable overlay of the extensions and the base, whose upper directory is the metadata
    /// layer: tools run on it (depmod, …) see the merged tree, and what they write lands in the
    /// metadata layer, on top of everything. Dropped before the real merge is built.
    static func staging(hierarchy: String, metadataPath: String, extensionLayers: [String],
                        base: String) throws -> DetachedMount {
        let context = try overlayContext(hierarchy, lower: extensionLayers + [base])
        do {
            try context.set("upperdir", metadataPath + "/" + MetadataLayer.layer)
            try context.set("workdir", metadataPath + "/" + MetadataLayer.work)
            return try context.mount(attributes: [.noDevices, .noSetuid], label: "staging overlay for \(hierarchy)")
        } catch {
            throw failure(hierarchy, "cannot create the staging overlay", context, error)
        }
    }

    static func overlayContext(_ hierarchy: String, lower: [String]) throws -> FilesystemContext {
        let context = try newOverlayContext(hierarchy)
        for (index, path) in lower.enumerated() {
            do {
                try context.set("lowerdir+", path)
            } catch {
                throw failure(hierarchy, "overlayfs refused layer \(index + 1) of \(lower.count)", context, error)
            }
        }
        return context
    }

    static func newOverlayContext(_ hierarchy: String) throws -> FilesystemContext {
        do {
            let context = try FilesystemContext(type: "overlay")
            try context.set("source", "earlyext")
            return context
        } catch {
            throw EarlyextError(.mount, "\(hierarchy): the kernel has no overlayfs support", errno: error)
        }
    }

    static func failure(_ hierarchy: String, _ what: String, _ context: borrowing FilesystemContext, _ error: Errno) -> EarlyextError {
        let detail = context.kernelMessages()
        return EarlyextError(.mount, "\(hierarchy): \(what)" + (detail.isEmpty ? "" : " (\(detail))"), errno: error)
    }
}
