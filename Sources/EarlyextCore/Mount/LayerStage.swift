import CShim
import Glibc

/// Where the layers of an overlay sit while overlayfs takes them.
///
/// Before Linux 6.13 or so, overlayfs clones each `lowerdir`/`upperdir` with
/// clone_private_mount(), which refuses a mount that is not in the caller's namespace: a detached
/// mount (`fsmount`, `open_tree(OPEN_TREE_CLONE)`) fails with EINVAL, "failed to clone lowerpath".
/// The 6.12 kernel of the boot suite does that; the 6.18 host does not. So while the merge is
/// built, the layers (images, base, metadata) are attached under a private tmpfs at
/// `$STATE_DIR/.layers`, outside ROOT. The overlays keep private clones of their layers, so the
/// stage is detached (with everything under it) as soon as they exist, and on any failure.
final class LayerStage {
    let path: String
    private var attached: [ObjectIdentifier: String] = [:]
    private var next = 0
    private var active = false

    init(stateDir: String) throws {
        path = stateDir + "/.layers"
        do {
            try makeDirectories(path, mode: 0o700)
            let context = try FilesystemContext(type: "tmpfs")
            try context.set("mode", "0700")
            try context.set("size", "1m")
            let tmpfs = try context.mount(attributes: [.noDevices, .noSetuid, .noExec], label: "earlyext layer stage")
            try tmpfs.attach(onto: path)
            active = true
            // Private: nothing attached below propagates anywhere.
            try mountSetAttributes(AT_FDCWD, path, flags: 0, set: 0, clear: 0, propagation: UInt64(MS_PRIVATE))
        } catch {
            close()
            throw EarlyextError(.mount, "cannot prepare the layer stage at \(path)", errno: error)
        }
    }

    deinit { close() }

    /// Attaches `mount` (once; later calls return the same place) and returns its path, named
    /// after `name` so that the overlay's options in mountinfo say what each layer was
    /// (`lowerdir+=/run/earlyext/.layers/2-kubernetes/usr`).
    func place(_ mount: DetachedMount, as name: String) throws -> String {
        if let existing = attached[ObjectIdentifier(mount)] { return existing }
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" ? $0 : "_" })
        let target = path + "/\(next)-\(safe)"
        next += 1
        do {
            try makeDirectory(at: AT_FDCWD, target, mode: 0o700)
            try mount.attach(onto: target)
        } catch {
            throw EarlyextError(.mount, "cannot stage \(mount.label) at \(target)", errno: error)
        }
        attached[ObjectIdentifier(mount)] = target
        return target
    }

    /// Detaches the stage and everything on it (MNT_DETACH), and removes its directory.
    func close() {
        if active {
            _ = try? unmount(path, flags: Int32(MNT_DETACH))
            active = false
        }
        _ = rmdir(path)
    }
}
