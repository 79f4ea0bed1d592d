import Glibc

/// `$STATE_DIR/state.json`: what was merged, from where, how it was checked, what was left out
/// and why, and how long each stage took. Written atomically (temp file, fsync, rename). The
/// initrd's /run survives switch-root, so the booted system reads the initrd's record.
public struct StateRecord {
    public struct Hierarchy: Equatable {
        /// "/usr" or "/opt".
        public var path: String
        /// Where it is mounted, inside the root, symlinks resolved: "/usr", or "/var/opt" when
        /// ROOT/opt links there. Relative to the root, so that the booted system reads the initrd's
        /// record right: the initrd merged ROOT=/sysroot, the booted system looks at /.
        public var target: String
        public var extensions: [String]
        public var baseWasMountPoint: Bool
        public var published: Publisher.Outcome?

        /// The host path under `environment`'s root.
        public func hostPath(in environment: Environment) -> String { environment.root + target }
    }

    public var root: String
    public var mergedAt: String
    public var hierarchies: [Hierarchy]
    /// Everything else, kept as JSON: per-extension details, skipped entries, timings.
    public var details: [(String, JSON)]

    public static let fileName = "state.json"

    /// The merged extensions as `ManagerActions` plans with them: name, the release keys it
    /// reads, and what identifies the image.
    var managedExtensions: [ManagerActions.Extension] {
        (details.first { $0.0 == "extensions" }?.1.arrayValue ?? []).compactMap { e in
            guard let name = e["name"]?.stringValue else { return nil }
            var release: [String: String] = [:]
            for key in ManagerActions.releaseKeys {
                if let value = e["release"]?[key]?.stringValue { release[key] = value }
            }
            let verification = e["verification"]
            return ManagerActions.Extension(name: name, release: release, identity: ManagerActions.Identity(
                version: e["version"]?.stringValue, source: e["source"]?.stringValue, file: e["file_id"]?.stringValue,
                digest: verification?["root_hash"]?.stringValue ?? verification?["sha256"]?.stringValue))
        }
    }

    /// The fingerprint of what this merge was built from (nil: not fingerprinted).
    public var inputs: [String]? {
        details.first { $0.0 == "inputs" }?.1.arrayValue?.compactMap(\.stringValue)
    }

    init(root: String, mergedAt: String, hierarchies: [Hierarchy], survey: Survey,
         modules: [String: KernelModules.Contribution] = [:]) {
        self.root = root
        self.mergedAt = mergedAt
        self.hierarchies = hierarchies
        let merged = Set(hierarchies.flatMap(\.extensions))
        var extensions: [JSON] = []
        var skipped: [JSON] = []
        for entry in survey.plan.entries {
            if merged.contains(entry.name) {
                let image = survey.opened[entry.name]
                var fields: [(String, JSON)] = [
                    ("name", .string(entry.name)),
                    ("source", .string(entry.candidate?.entryPath ?? "")),
                    ("format", .string(image?.format ?? entry.candidate?.kind.rawValue ?? "")),
                    ("hierarchies", .array(entry.hierarchies.map { .string($0) })),
                    ("reason", .string(entry.reason)),
                ]
                if let verified = survey.verified[entry.name] {
                    fields.append(("verified", .string(verified.verification.summary)))
                    fields.append(("verification", verified.verification.json))
                    if let dm = verified.deviceMapperName { fields.append(("device_mapper", .string(dm))) }
                    if !verified.loopDevices.isEmpty { fields.append(("loop_devices", .array(verified.loopDevices.map(JSON.string)))) }
                } else if let loop = image?.loopDevice {
                    fields.append(("loop_device", .string(loop)))
                }
                if let candidate = entry.candidate, candidate.kind != .directory,
                   let st = try? statAt(AT_FDCWD, candidate.resolvedPath) {
                    // What identifies the image file, for ManagerActions: another file, or the same rewritten.
                    fields.append(("file_id", .string("\(st.st_dev):\(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)")))
                }
                if let contribution = modules[entry.name] {
                    fields.append(("modules", .array(contribution.modules.map(JSON.string))))
                    if !contribution.otherKernels.isEmpty {
                        fields.append(("modules_other_kernels", .array(contribution.otherKernels.map(JSON.string))))
                    }
                }
                if let release = entry.release {
                    let keys = ["ID", "VERSION_ID", "SYSEXT_LEVEL", "SYSEXT_SCOPE", "ARCHITECTURE"] + ManagerActions.releaseKeys
                    fields.append(("release", .object(keys.compactMap { k in release[k].map { (k, .string($0)) } })))
                    if let version = release["SYSEXT_VERSION_ID"] ?? release["VERSION_ID"] {
                        fields.append(("version", .string(version)))
                    }
                }
                extensions.append(.object(fields))
            } else {
                skipped.append(.object([("name", .string(entry.name)),
                                        ("source", .string(entry.candidate?.entryPath ?? "")),
                                        ("reason", .string(entry.reason))]))
            }
        }
        details = [
            ("inputs", survey.inputs.map { .array($0.map(JSON.string)) } ?? .null),
            ("extensions", .array(extensions)),
            ("skipped", .array(skipped)),
            ("timings_ms", .object(survey.timings.map { ($0.0, .double(($0.1 * 1000).rounded() / 1000)) })),
        ] + (survey.fetched?.json ?? [])
    }

    init(root: String, mergedAt: String, hierarchies: [Hierarchy], details: [(String, JSON)]) {
        self.root = root
        self.mergedAt = mergedAt
        self.hierarchies = hierarchies
        self.details = details
    }

    public var json: JSON {
        .object([
            ("version", .int(1)),
            ("root", .string(root)),
            ("merged_at", .string(mergedAt)),
            ("hierarchies", .array(hierarchies.map { h in
                .object([("path", .string(h.path)),
                         ("target", .string(h.target)),
                         ("extensions", .array(h.extensions.map { .string($0) })),
                         ("base_was_mount_point", .bool(h.baseWasMountPoint)),
                         ("published", h.published.map { .string($0.rawValue) } ?? .null)])
            })),
        ] + details)
    }

    public func save(to stateDir: String) throws {
        let temporary = stateDir + "/." + Self.fileName + ".tmp"
        do {
            try makeDirectories(stateDir, mode: 0o755)
            try writeTextFile(at: AT_FDCWD, temporary, json.render(pretty: true) + "\n")
            let fd = try openPath(temporary, O_RDONLY)
            try syncDescriptor(fd.rawValue)
            try renameAt(AT_FDCWD, temporary, AT_FDCWD, stateDir + "/" + Self.fileName)
            let dir = try openPath(stateDir, O_RDONLY | O_DIRECTORY)
            try syncDescriptor(dir.rawValue)
        } catch {
            throw EarlyextError(.state, "cannot write \(stateDir)/\(Self.fileName)", errno: error)
        }
    }

    /// The record in `stateDir`, or nil if there is none (or it cannot be read: nothing merged).
    public static func load(from stateDir: String) -> StateRecord? {
        guard let text = try? readTextFile(at: AT_FDCWD, stateDir + "/" + fileName, limit: 16 << 20),
              let json = try? JSON.parse(text), let object = json.objectValue else { return nil }
        let hierarchies = (json["hierarchies"]?.arrayValue ?? []).compactMap { h -> Hierarchy? in
            guard let path = h["path"]?.stringValue else { return nil }
            return Hierarchy(path: path, target: h["target"]?.stringValue ?? path,
                             extensions: (h["extensions"]?.arrayValue ?? []).compactMap(\.stringValue),
                             baseWasMountPoint: h["base_was_mount_point"] == .bool(true),
                             published: h["published"]?.stringValue.flatMap(Publisher.Outcome.init(rawValue:)))
        }
        let known: Set<String> = ["version", "root", "merged_at", "hierarchies"]
        return StateRecord(root: json["root"]?.stringValue ?? "", mergedAt: json["merged_at"]?.stringValue ?? "",
                           hierarchies: hierarchies, details: object.filter { !known.contains($0.0) })
    }

    public static func remove(from stateDir: String) {
        _ = unlink(stateDir + "/" + fileName)
    }
}
