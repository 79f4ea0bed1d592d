import Glibc

/// udev's hardware database. An extension that ships `usr/lib/udev/hwdb.d/*.hwdb` needs a
/// compiled `hwdb.bin` for the merged tree, or udev never sees its entries. earlyext compiles it
/// with the system's `systemd-hwdb update --usr` over a scratch root holding the merged hwdb.d
/// (and the root's /etc/udev/hwdb.d), and puts the result in the metadata layer at
/// `lib/udev/hwdb.bin`, on top of the base's.
enum HardwareDatabase {
    static let sourceDirectory = "lib/udev/hwdb.d"

    /// The `.hwdb` files an extension's /usr layer ships.
    static func shipped(usrLayer: Int32) -> [String] {
        guard let dir = try? openAt(usrLayer, sourceDirectory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW),
              let entries = try? directoryEntries(dir.rawValue) else { return [] }
        return entries.map(\.name).filter { $0.hasSuffix(".hwdb") }.sorted()
    }

    /// Compiles the merged hwdb (read through the staging overlay) into the metadata layer.
    static func generate(staging: DetachedMount, root: String, metadata: MetadataLayer, scratch: String, log: Log) throws {
        guard let tool = Subprocess.locate("systemd-hwdb") else {
            throw EarlyextError(.mount, "systemd-hwdb not found: cannot compile the hwdb entries extensions ship")
        }
        let stage = scratch + "/.hwdb-\(getpid())"
        defer { removeTree(stage) }
        do {
            removeTree(stage)
            try copyHwdbFiles(from: staging.procPath + "/" + sourceDirectory, to: stage + "/usr/" + sourceDirectory)
            try copyHwdbFiles(from: root + "/etc/udev/hwdb.d", to: stage + "/etc/udev/hwdb.d")
            // A merged-/usr layout: systemd-hwdb may look under /lib/udev (Debian builds it so).
            _ = try valueOrErrno { symlink("usr/lib", stage + "/lib") }
        } catch {
            throw EarlyextError.wrapping(error, .mount, "cannot stage the hwdb sources in \(stage)")
        }
        let outcome: Subprocess.Outcome
        do {
            outcome = try Subprocess(arguments: [tool, "update", "--root", stage, "--usr"]).run()
        } catch {
            throw EarlyextError(.mount, "cannot run \(tool)", errno: error as? Errno)
        }
        guard outcome.succeeded else {
            throw EarlyextError(.mount, "systemd-hwdb update failed (status \(outcome.status)): \(outcome.lastLine)")
        }
        do {
            let binary = try openPath(stage + "/usr/lib/udev/hwdb.bin", O_RDONLY)
            try metadata.write("lib/udev/hwdb.bin", bytes: try readAll(binary.rawValue, limit: 256 << 20))
        } catch {
            throw EarlyextError.wrapping(error, .mount, "cannot put hwdb.bin into the metadata layer")
        }
        for shadowing in ["/etc/udev/hwdb.bin", "/etc/systemd/hwdb/hwdb.bin"] where access(root + shadowing, F_OK) == 0 {
            log.warning("\(root)\(shadowing) exists and takes precedence over the merged /usr/lib/udev/hwdb.bin; the extensions' hwdb entries are not seen until it is removed or regenerated")
        }
    }

    /// Copies the `.hwdb` files of one directory (if it exists) into another.
    static func copyHwdbFiles(from source: String, to destination: String) throws {
        guard let dir = try? openPath(source, O_RDONLY | O_DIRECTORY) else { return }
        try makeDirectories(destination, mode: 0o755)
        for entry in try directoryEntries(dir.rawValue) where entry.name.hasSuffix(".hwdb") {
            let input = try openAt(dir.rawValue, entry.name, O_RDONLY)
            let bytes = try readAll(input.rawValue, limit: 64 << 20)
            let output = try openPath(destination + "/" + entry.name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode: 0o644)
            try writeAll(output.rawValue, bytes)
        }
    }
}

/// rm -r, without following symlinks; errors are ignored (scratch space).
func removeTree(_ path: String) {
    if let dir = try? openPath(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), let entries = try? directoryEntries(dir.rawValue) {
        for entry in entries {
            if entry.type == UInt8(DT_DIR) { removeTree(path + "/" + entry.name) } else { _ = unlink(path + "/" + entry.name) }
        }
    }
    _ = rmdir(path)
}
