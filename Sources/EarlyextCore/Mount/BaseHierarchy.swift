import CShim
import Glibc

/// The base a hierarchy is extended from: what ROOT/usr shows without any merge.
///
/// After a beneath swap the old mount at ROOT/usr is detached, and the base lives on only as the
/// overlay's bottom layer. To refresh or unmerge later, earlyext keeps a read-only clone of the
/// base at `$STATE_DIR/base/usr` (the "stash"), outside ROOT/usr. In the initrd that is under
/// `/run`, which systemd carries across switch-root.
public struct BaseHierarchy {
    public let hierarchy: String
    /// Was ROOT/HIERARCHY a mount point before the first merge? (Else a plain directory.)
    public let wasMountPoint: Bool
    let forOverlay: DetachedMount
    /// A second clone to attach as the stash, or nil when the stash is already in place.
    let forStash: DetachedMount?

    public static func stashPath(_ hierarchy: String, stateDir: String) -> String {
        stateDir + "/base" + hierarchy
    }

    /// Finds the base: the stash of a previous merge if there is one, else what is at
    /// ROOT/HIERARCHY now (a mount, without its nested mounts, or a plain directory).
    static func locate(_ hierarchy: String, target: String, environment: Environment, previous: StateRecord?) throws -> BaseHierarchy {
        let stash = stashPath(hierarchy, stateDir: environment.stateDir)
        let table = try MountTable.current()
        if let recorded = previous?.hierarchies.first(where: { $0.path == hierarchy }), table.top(at: stash) != nil {
            do {
                return BaseHierarchy(hierarchy: hierarchy, wasMountPoint: recorded.baseWasMountPoint,
                                     forOverlay: try DetachedMount.clone(stash), forStash: nil)
            } catch {
                throw EarlyextError(.mount, "\(target): cannot open the base kept at \(stash)", errno: error)
            }
        }
        if let top = table.top(at: target), top.fstype == "overlay",
           (try? statAt(AT_FDCWD, target + "/" + MetadataLayer.directory + "/dev")) != nil {
            throw EarlyextError(.mount, "\(target): carries a sysext merge that earlyext did not make (no base kept in \(environment.stateDir)); run 'systemd-sysext unmerge' first")
        }
        do {
            let st = try statAt(AT_FDCWD, target)
            guard ee_s_isdir(st.st_mode) != 0 else {
                throw EarlyextError(.mount, "\(target): not a directory")
            }
            let first = try DetachedMount.clone(target)
            let second = try DetachedMount.clone(target)
            return BaseHierarchy(hierarchy: hierarchy, wasMountPoint: table.top(at: target) != nil,
                                 forOverlay: first, forStash: second)
        } catch {
            throw EarlyextError.wrapping(error, .mount, "\(target): the base hierarchy is missing or unusable")
        }
    }

    /// The base's root directory, for the overlay's bottom layer.
    func openDirectory() throws -> FileDescriptor {
        do { return try forOverlay.openDirectory("") } catch {
            throw EarlyextError(.mount, "\(hierarchy): cannot open the base", errno: error)
        }
    }

    /// Attaches the stash (read-only, private) if it is not there yet.
    func stash(in stateDir: String) throws {
        guard let forStash else { return }
        let path = Self.stashPath(hierarchy, stateDir: stateDir)
        do {
            try makeDirectories(path, mode: 0o700)
            try forStash.setAttributes([.readOnly])
            try forStash.attach(onto: path)
            try mountSetAttributes(AT_FDCWD, path, flags: 0, set: 0, clear: 0, propagation: UInt64(MS_PRIVATE))
        } catch {
            throw EarlyextError(.state, "cannot keep the base of \(hierarchy) at \(path)", errno: error)
        }
    }

    /// Detaches the stash, if mounted.
    static func dropStash(_ path: String) {
        while (try? MountTable.current().top(at: path)) ?? nil != nil {
            guard (try? unmount(path, flags: Int32(MNT_DETACH))) != nil else { break }
        }
        _ = rmdir(path)
    }
}
