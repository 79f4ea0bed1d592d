import CShim
import Glibc

/// Puts a new overlay in place at ROOT/HIERARCHY so that at no moment is the hierarchy missing or
/// half-merged, and afterwards exactly one mount is visible there.
///
/// - A mount point: the overlay goes *beneath* the current top (move_mount MOVE_MOUNT_BENEATH,
///   Linux 6.5+), then the old top is detached. Readers see the old tree, then the new one.
/// - A plain directory: the overlay is mounted onto it.
/// - A kernel without MOVE_MOUNT_BENEATH (EINVAL): the overlay is mounted on top, and the old top
///   stays underneath; a warning says so.
///
/// Propagation: if the old top is a peer of its own parent (a bind of a shared mount onto a
/// shared parent, which is what `mount --bind /x/usr /x/usr` under a shared /x gives), a mount
/// at that place propagates into the old top itself and leaves a stacked copy. The old top is
/// about to go, so it is made private first; peers of the parent still receive the change.
public enum Publisher {
    public enum Outcome: String, Equatable, Sendable { case beneath, onto, stackedFallback = "stacked-fallback" }

    public static func publish(_ overlay: DetachedMount, at target: String, log: Log) throws -> Outcome {
        let table = try MountTable.current()
        let isMountPoint = table.top(at: target) != nil
        if !isMountPoint {
            do { try overlay.attach(onto: target) } catch {
                throw EarlyextError(.publish, "\(target): cannot mount the overlay", errno: error)
            }
            return .onto
        }
        do {
            try mountSetAttributes(AT_FDCWD, target, flags: 0, set: 0, clear: 0, propagation: UInt64(MS_PRIVATE))
        } catch {
            throw EarlyextError(.publish, "\(target): cannot make the old top private", errno: error)
        }
        // Mounts nested under the old top (say /usr/share/foo) must survive. Clone each, and once the
        // overlay is beneath, attach the clones onto it through its descriptor: the overlay is
        // still covered, so nobody sees a gap there either.
        let nested = try cloneNestedMounts(under: target, table: table)
        do {
            try overlay.attach(beneath: target)
        } catch where error == .invalid && !kernelHasMoveMountBeneath() {
            log.warning("\(target): this kernel has no MOVE_MOUNT_BENEATH (Linux 6.5+); mounting on top, the old mount stays underneath")
            do { try overlay.attach(onto: target) } catch {
                throw EarlyextError(.publish, "\(target): cannot mount the overlay", errno: error)
            }
            return .stackedFallback
        } catch {
            throw EarlyextError(.publish, "\(target): cannot move the overlay beneath the current mount", errno: error)
        }
        for (relative, clone) in nested {
            do {
                try clone.attach(onto: overlay.procPath + "/" + relative)
            } catch {
                log.warning("\(target)/\(relative): the mount there does not carry over to the new merge (\(error))")
            }
        }
        do {
            try unmount(target, flags: Int32(MNT_DETACH))
        } catch {
            throw EarlyextError(.publish, "\(target): the overlay is in place beneath the old mount, but detaching the old mount failed", errno: error)
        }
        return .beneath
    }

    /// Recursive clones of the mounts directly on top of the hierarchy's top mount, with their
    /// paths relative to the hierarchy.
    static func cloneNestedMounts(under target: String, table: MountTable) throws -> [(String, DetachedMount)] {
        guard let top = table.top(at: target) else { return [] }
        let children = table.entries.filter { $0.parentID == top.id && $0.target != target }
        var clones: [(String, DetachedMount)] = []
        for child in children {
            do {
                clones.append((String(child.target.dropFirst(target.count + 1)), try DetachedMount.clone(child.target, recursive: true)))
            } catch {
                throw EarlyextError(.publish, "\(child.target): cannot carry this mount over to the new merge", errno: error)
            }
        }
        return clones
    }

    /// Removes the top mount at `target` (MNT_DETACH: open files keep working).
    public static func detachTop(at target: String) throws {
        do { try unmount(target, flags: Int32(MNT_DETACH)) } catch {
            throw EarlyextError(.publish, "\(target): cannot detach the merge", errno: error)
        }
    }

    /// MOVE_MOUNT_BENEATH needs Linux 6.5. uname(2) tells, for the message only: the call itself
    /// decides.
    static func kernelHasMoveMountBeneath() -> Bool {
        var name = utsname()
        guard uname(&name) == 0 else { return true }
        let release = withUnsafeBytes(of: name.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return true }
        return (parts[0], parts[1]) >= (6, 5)
    }
}
