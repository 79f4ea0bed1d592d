/// One sysupdate.d transfer, reduced to what earlyext does with it: download the newest image a
/// `url-file` source lists into a `regular-file` target directory, as sysext-bakery publishes its
/// extensions:
///
/// ```
/// [Transfer]
/// Verify=false
/// [Source]
/// Type=url-file
/// Path=https://extensions.flatcar.org/extensions/kubernetes/
/// MatchPattern=kubernetes-@v-%a.raw
/// [Target]
/// InstancesMax=3
/// Type=regular-file
/// Path=/opt/extensions/kubernetes
/// CurrentSymlink=/etc/extensions/kubernetes.raw
/// ```
///
/// Settings are read as systemd-sysupdate reads them (sysupdate.d(5)); see `Transfer.parse`.
public struct Transfer: Equatable, Sendable {
    /// The file name without `.transfer`/`.conf`: "kubernetes".
    public var id: String
    /// "kubernetes" for a file in `sysupdate.kubernetes.d`, nil for `sysupdate.d`.
    public var component: String?
    /// The file, as a path under the root: "/etc/sysupdate.kubernetes.d/kubernetes.conf".
    public var source: String
    /// `[Transfer] Verify=` (default yes): `SHA256SUMS.gpg` must verify.
    public var verify: Bool
    /// `[Source] Path=`: the directory URL that holds `SHA256SUMS` and the images.
    public var url: String
    /// `[Source] MatchPattern=`, specifiers expanded.
    public var sourcePatterns: [MatchPattern]
    /// `[Target] Path=`: an absolute directory under the root.
    public var targetPath: String
    /// `[Target] MatchPattern=`, default the source's.
    public var targetPatterns: [MatchPattern]
    /// `[Target] InstancesMax=`: default 3; values below 2 are raised to 2, as in systemd.
    public var instancesMax: Int
    /// `[Target] CurrentSymlink=`, made absolute (a relative one is relative to `targetPath`).
    public var currentSymlink: String?
    /// `[Target] Mode=` (default 0644), without write bits when `ReadOnly=yes`.
    public var mode: UInt32
    /// `[Transfer] MinVersion=` / `MaxVersion=`: versions outside are not installed.
    public var minVersion: String?
    public var maxVersion: String?
    /// `[Transfer] ProtectVersion=`: instances never pruned.
    public var protectedVersions: [String]

    /// The extension name this transfer provides, for messages and the plan: the `CurrentSymlink`
    /// file name without `.raw` (and `.sysext`), else the component name, else the transfer id.
    public var name: String {
        if let link = currentSymlink, let last = link.split(separator: "/").last {
            return strippingSuffixes(String(last), raw: true)
        }
        return component ?? id
    }
}

/// What reading a transfer gave: the transfer (nil when it must be skipped), warnings (the
/// transfer is still used) and errors (each names the file, line and key).
public struct TransferParse: Sendable {
    public var transfer: Transfer?
    public var warnings: [String] = []
    public var errors: [String] = []
}

extension Transfer {
    /// systemd's default `InstancesMax=` for file targets.
    public static let defaultInstancesMax = 3

    /// Reads a transfer from its file and drop-ins (`files`, in the order they apply: the main
    /// file first, then `NAME.d/*.conf` by file name). `path` in each is the path under the root
    /// used in messages.
    ///
    /// - Supported: `[Transfer] Verify= MinVersion= MaxVersion= ProtectVersion=`,
    ///   `[Source] Type=url-file Path= MatchPattern= PathRelativeTo=root`,
    ///   `[Target] Type=regular-file Path= MatchPattern= InstancesMax= CurrentSymlink= Mode=
    ///   ReadOnly= RemoveTemporary= PathRelativeTo=root`. `ChangeLog=` and `AppStream=` are
    ///   informational and ignored.
    /// - Unsupported (the transfer is skipped, with a message): other source and target types,
    ///   `Features=`/`RequisiteFeatures=`, `Path=auto`, other `PathRelativeTo=` values.
    /// - Partition-only keys (`MatchPartitionType=`, `Partition*=`, `TriesLeft=`, `TriesDone=`)
    ///   are ignored with a warning; unknown keys and sections are warnings, as in systemd.
    /// - A value that does not parse is an error and the transfer is skipped (systemd would
    ///   ignore the one assignment; earlyext is stricter because it runs unattended at boot).
    public static func parse(files: [(path: String, text: String)], id: String, component: String?,
                             specifiers: SpecifierValues) -> TransferParse {
        var result = TransferParse()
        var settings = TransferSettings()
        let origin = files.first?.path ?? id

        for file in files {
            let ini = INIFile.parse(file.text)
            for problem in ini.problems {
                result.errors.append("\(file.path):\(problem.line): \(problem.message)")
            }
            for section in ini.sections where !["Transfer", "Source", "Target"].contains(section) {
                result.warnings.append("\(file.path): unknown section [\(section)], ignored")
            }
            for entry in ini.entries where ["Transfer", "Source", "Target"].contains(entry.section) {
                let place = "\(file.path):\(entry.line): \(entry.key)="
                switch settings.apply(entry, specifiers: specifiers) {
                case .ok: break
                case .warning(let text): result.warnings.append("\(place): \(text)")
                case .invalid(let text): result.errors.append("\(place): \(text)")
                case .unsupported(let text): result.errors.append("\(place): \(text) (not supported by earlyext)")
                }
            }
        }

        // Finalize, as systemd's transfer_finalize() does.
        let sourceType = settings.sourceType ?? ""
        if settings.sourceType == nil {
            result.errors.append("\(origin): [Source] lacks Type=")
        }
        let targetType = settings.targetType ?? (sourceType == "url-file" && (settings.targetPath?.hasPrefix("/dev/") ?? false) ? "partition" : "regular-file")
        if settings.sourceType != nil, sourceType != "url-file" {
            result.errors.append("\(origin): [Source] Type=\(sourceType) is not supported by earlyext (only url-file)")
        }
        if targetType != "regular-file" {
            result.errors.append("\(origin): [Target] Type=\(targetType) is not supported by earlyext (only regular-file)")
        }
        if settings.url == nil { result.errors.append("\(origin): [Source] lacks Path=") }
        if settings.sourcePatterns.isEmpty { result.errors.append("\(origin): [Source] lacks MatchPattern=") }
        if settings.targetPath == nil { result.errors.append("\(origin): [Target] lacks Path=") }
        if !settings.features.isEmpty {
            result.errors.append("\(origin): [Transfer] Features=/RequisiteFeatures= (\(settings.features.joined(separator: " "))) are not supported by earlyext")
        }
        guard result.errors.isEmpty, let url = settings.url, let targetPath = settings.targetPath else { return result }

        var currentSymlink = settings.currentSymlink
        if let link = currentSymlink, !link.hasPrefix("/") { currentSymlink = targetPath + "/" + link }
        var mode = settings.mode ?? 0o644
        if settings.readOnly == true { mode &= ~0o222 }
        result.transfer = Transfer(
            id: id, component: component, source: origin, verify: settings.verify ?? true, url: url,
            sourcePatterns: settings.sourcePatterns,
            targetPatterns: settings.targetPatterns ?? settings.sourcePatterns.filter { pattern in
                pattern.fields.allSatisfy { $0 == .version }
            },
            targetPath: targetPath, instancesMax: settings.instancesMax ?? defaultInstancesMax,
            currentSymlink: currentSymlink, mode: mode, minVersion: settings.minVersion,
            maxVersion: settings.maxVersion, protectedVersions: settings.protectedVersions)
        if settings.targetPatterns == nil, result.transfer!.targetPatterns.isEmpty {
            result.errors.append("\(origin): [Target] lacks MatchPattern= and the source's patterns use fields other than @v")
            result.transfer = nil
        }
        return result
    }

    fileprivate init(id: String, component: String?, source: String, verify: Bool, url: String,
                     sourcePatterns: [MatchPattern], targetPatterns: [MatchPattern], targetPath: String,
                     instancesMax: Int, currentSymlink: String?, mode: UInt32, minVersion: String?,
                     maxVersion: String?, protectedVersions: [String]) {
        self.id = id
        self.component = component
        self.source = source
        self.verify = verify
        self.url = url
        self.sourcePatterns = sourcePatterns
        self.targetPatterns = targetPatterns
        self.targetPath = targetPath
        self.instancesMax = instancesMax
        self.currentSymlink = currentSymlink
        self.mode = mode
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.protectedVersions = protectedVersions
    }
}

// MARK: - Implementation

private enum Outcome {
    case ok
    case warning(String)
    case invalid(String)
    case unsupported(String)
}

/// The settings as assigned so far; later assignments override earlier ones, and an empty
/// assignment resets a setting, as in systemd.
private struct TransferSettings {
    var verify: Bool?
    var minVersion: String?
    var maxVersion: String?
    var protectedVersions: [String] = []
    var features: [String] = []
    var sourceType: String?
    var url: String?
    var sourcePatterns: [MatchPattern] = []
    var targetType: String?
    var targetPath: String?
    var targetPatterns: [MatchPattern]?
    var instancesMax: Int?
    var currentSymlink: String?
    var mode: UInt32?
    var readOnly: Bool?

    static let resourceTypes = ["url-file", "url-tar", "tar", "regular-file", "directory", "subvolume", "partition"]
    static let partitionOnlyKeys = ["MatchPartitionType", "PartitionUUID", "PartitionFlags", "PartitionNoAuto",
                                    "PartitionGrowFileSystem", "TriesLeft", "TriesDone"]

    mutating func apply(_ entry: INIFile.Entry, specifiers: SpecifierValues) -> Outcome {
        let value = entry.value
        func expanded() -> Result<String, SpecifierError> {
            do { return .success(try expandSpecifiers(value, specifiers)) } catch { return .failure(error) }
        }
        func boolean(_ assign: (Bool?) -> Void) -> Outcome {
            if value.isEmpty { assign(nil); return .ok }
            guard let parsed = parseBoolean(value) else { return .invalid("'\(value)' is not a boolean") }
            assign(parsed)
            return .ok
        }

        switch (entry.section, entry.key) {
        case ("Transfer", "Verify"):
            return boolean { verify = $0 }
        case ("Transfer", "MinVersion"), ("Transfer", "MaxVersion"):
            var bound: String?
            if !value.isEmpty {
                switch expanded() {
                case .failure(let error): return .invalid(error.message)
                case .success(let text):
                    guard MatchPattern.isValidVersion(text) else { return .invalid("'\(text)' is not a valid version") }
                    bound = text
                }
            }
            if entry.key == "MinVersion" { minVersion = bound } else { maxVersion = bound }
            return .ok
        case ("Transfer", "ProtectVersion"):
            if value.isEmpty { protectedVersions = []; return .ok }
            for word in value.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                do {
                    let version = try expandSpecifiers(String(word), specifiers)
                    // An empty expansion (%A without IMAGE_VERSION) protects nothing, as in systemd.
                    if version.isEmpty { continue }
                    guard MatchPattern.isValidVersion(version) else { return .invalid("'\(version)' is not a valid version") }
                    protectedVersions.append(version)
                } catch {
                    return .invalid(error.message)
                }
            }
            return .ok
        case ("Transfer", "Features"), ("Transfer", "RequisiteFeatures"):
            if value.isEmpty { features = []; return .ok }
            features += value.split(separator: " ").map(String.init)
            return .ok
        case ("Transfer", "ChangeLog"), ("Transfer", "AppStream"):
            return .ok
        case ("Source", "Type"), ("Target", "Type"):
            guard Self.resourceTypes.contains(value) else {
                return .invalid("'\(value)' is not a resource type (\(Self.resourceTypes.joined(separator: ", ")))")
            }
            if entry.section == "Source" { sourceType = value } else { targetType = value }
            return .ok
        case ("Source", "PathRelativeTo"), ("Target", "PathRelativeTo"):
            guard value.isEmpty || value == "root" else {
                return .unsupported("PathRelativeTo=\(value): only 'root' is")
            }
            return .ok
        case ("Source", "Path"):
            switch expanded() {
            case .failure(let error): return .invalid(error.message)
            case .success(let text):
                if text == "auto" { return .unsupported("Path=auto") }
                guard isSupportedURL(text) else { return .invalid("'\(text)' is not an http://, https:// or file:// URL") }
                url = text
                return .ok
            }
        case ("Target", "Path"):
            switch expanded() {
            case .failure(let error): return .invalid(error.message)
            case .success(var text):
                if text == "auto" { return .unsupported("Path=auto") }
                while text.count > 1, text.hasSuffix("/") { text.removeLast() }
                guard isNormalizedAbsolutePath(text) else { return .invalid("'\(text)' is not a normalized absolute path") }
                targetPath = text
                return .ok
            }
        case ("Source", "MatchPattern"), ("Target", "MatchPattern"):
            let isSource = entry.section == "Source"
            if value.isEmpty {
                if isSource { sourcePatterns = [] } else { targetPatterns = nil }
                return .ok
            }
            var patterns: [MatchPattern] = isSource ? sourcePatterns : (targetPatterns ?? [])
            for word in value.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                do {
                    let pattern = try MatchPattern(try expandSpecifiers(String(word), specifiers))
                    if !isSource, let field = pattern.fields.first(where: { $0 != .version }) {
                        return .unsupported("'\(pattern.text)': field @\(field.rawValue) in a target pattern (only @v)")
                    }
                    if !patterns.contains(pattern) { patterns.append(pattern) }
                } catch let error as SpecifierError {
                    return .invalid(error.message)
                } catch let error as PatternError {
                    return .invalid(error.message)
                } catch {
                    return .invalid("\(error)")
                }
            }
            if isSource { sourcePatterns = patterns } else { targetPatterns = patterns }
            return .ok
        case ("Target", "InstancesMax"):
            if value.isEmpty { instancesMax = nil; return .ok }
            guard let number = Int(value), number >= 0 else { return .invalid("'\(value)' is not a number") }
            if number == 0 { instancesMax = nil; return .ok }
            if number < 2 {
                instancesMax = 2
                return .warning("must be at least 2, using 2")
            }
            instancesMax = number
            return .ok
        case ("Target", "CurrentSymlink"):
            if value.isEmpty { currentSymlink = nil; return .ok }
            switch expanded() {
            case .failure(let error): return .invalid(error.message)
            case .success(let text):
                let components = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst(text.hasPrefix("/") ? 1 : 0)
                guard !text.hasSuffix("/"), !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                    return .invalid("'\(text)' is not a normalized path")
                }
                currentSymlink = text
                return .ok
            }
        case ("Target", "Mode"):
            if value.isEmpty { mode = nil; return .ok }
            guard value.utf8.count <= 4, let parsed = UInt32(value, radix: 8), parsed <= 0o7777 else {
                return .invalid("'\(value)' is not an octal access mode")
            }
            mode = parsed
            return .ok
        case ("Target", "ReadOnly"):
            return boolean { readOnly = $0 }
        case ("Target", "RemoveTemporary"):
            // earlyext always removes its own temporary files.
            return boolean { _ in }
        case ("Target", let key) where Self.partitionOnlyKeys.contains(key):
            return .warning("applies to partition targets only, ignored")
        default:
            return .warning("unknown key, ignored")
        }
    }
}

/// http://, https:// or file:// followed by something.
func isSupportedURL(_ text: String) -> Bool {
    for scheme in ["http://", "https://", "file://"] where text.lowercased().hasPrefix(scheme) {
        return text.utf8.count > scheme.utf8.count && !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f })
    }
    return false
}

/// Absolute, no empty, `.` or `..` components.
func isNormalizedAbsolutePath(_ text: String) -> Bool {
    guard text.hasPrefix("/") else { return false }
    if text == "/" { return true }
    return !text.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        .contains(where: { $0.isEmpty || $0 == "." || $0 == ".." })
}
