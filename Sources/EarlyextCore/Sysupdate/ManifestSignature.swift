import Glibc

/// `Verify=yes`: the `SHA256SUMS.gpg` detached signature over `SHA256SUMS`, checked with `gpgv`
/// against the keyring systemd-pull uses.
///
/// systemd-pull runs gpg with `--keyring=` the first of `/etc/systemd/import-pubring.pgp`,
/// `/etc/systemd/import-pubring.gpg` (older name), else `/usr/lib/systemd/import-pubring.pgp`
/// (older systemd, such as Debian 12's 252: `import-pubring.gpg`). earlyext looks for these under
/// the root first, since the transfers come from there too, then in the running system (the
/// initrd) when the root has none.
public enum ManifestSignature {
    /// The keyring candidates, in systemd's order.
    public static let keyringPaths = [
        "/etc/systemd/import-pubring.pgp", "/etc/systemd/import-pubring.gpg",
        "/usr/lib/systemd/import-pubring.pgp", "/usr/lib/systemd/import-pubring.gpg",
    ]

    /// The host path of the keyring to use, or nil if there is none.
    public static func keyring(root: String) -> String? {
        let prefix = hostPrefix(forRoot: root)
        if let rootFD = try? openRoot(root) {
            for path in keyringPaths {
                if let resolved = try? resolve(inside: rootFD.rawValue, path, rootName: root), resolved.isRegularFile {
                    return prefix + resolved.path
                }
            }
        }
        if !prefix.isEmpty {
            for path in keyringPaths where access(path, R_OK) == 0 { return path }
        }
        return nil
    }

    /// Checks `signature` over `manifest` with `gpgv --keyring KEYRING`. Throws a one-line reason:
    /// gpgv missing, no keyring, or gpgv's own complaint (bad signature, unknown key).
    public static func verify(manifest: [UInt8], signature: [UInt8], keyring: String?, url: String) throws {
        func failure(_ reason: String, errno: Errno? = nil) -> EarlyextError {
            EarlyextError(.fetch, "\(url): Verify=yes: \(reason)", errno: errno)
        }
        guard let gpgv = Subprocess.locate("gpgv") else {
            throw failure("gpgv is not installed, so SHA256SUMS.gpg cannot be checked (install gpgv, or set Verify=no)")
        }
        guard let keyring else {
            throw failure("no keyring: none of \(keyringPaths.joined(separator: ", ")) exists")
        }
        let directory: String
        do {
            directory = try makeTemporaryDirectory(prefix: (access("/run", W_OK) == 0 ? "/run" : "/tmp") + "/earlyext-gpgv.")
        } catch {
            throw failure("cannot create a temporary directory", errno: error)
        }
        defer { removeTree(directory) }
        let outcome: Subprocess.Outcome
        do {
            try writeFile("\(directory)/SHA256SUMS", manifest)
            try writeFile("\(directory)/SHA256SUMS.gpg", signature)
            outcome = try Subprocess(arguments: [gpgv, "--homedir", directory, "--keyring", keyring,
                                                 "\(directory)/SHA256SUMS.gpg", "\(directory)/SHA256SUMS"]).run()
        } catch {
            throw failure("cannot run \(gpgv)", errno: error as? Errno)
        }
        guard outcome.succeeded else {
            let lines = outcome.output.split(separator: "\n").map { $0.hasPrefix("gpgv: ") ? $0.dropFirst(6) : $0 }
            throw failure("SHA256SUMS.gpg does not verify against \(keyring): \(lines.suffix(2).joined(separator: "; "))")
        }
    }

    private static func writeFile(_ path: String, _ bytes: [UInt8]) throws(Errno) {
        let fd = try openPath(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode: 0o600)
        try writeAll(fd.rawValue, bytes)
    }
}
