import CShim
import Glibc

/// A selection file: one extension the machine wants, and where to get it.
///
/// ```
/// [Extension]
/// Name=kubernetes
/// Url=https://example.org/kubernetes-v1.31.0-x86-64.raw
/// SHA256=<64 hex digits>
/// Required=no
/// Path=/etc/extensions/kubernetes.raw
/// Policy=verity
/// ```
///
/// Files are `ROOT/etc/earlyext/select.d/*.conf`, with vendor defaults in
/// `ROOT/usr/lib/earlyext/select.d/`; see `readSelections(root:)`.
public struct Selection: Equatable, Sendable {
    /// `Name=`: the extension name (a valid image name).
    public var name: String
    /// `Url=`: http://, https:// or file://.
    public var url: String
    /// `SHA256=`: lowercase hex. Required for http(s) URLs.
    public var sha256: String?
    /// `Required=` (default no): the boot stops if this extension cannot be merged.
    public var required: Bool
    /// `Path=`: an absolute path under the root, default `/etc/extensions/NAME.raw`.
    public var path: String
    /// `Policy=`: `any`, `verity` or `signed`, as `[Policy] Require=` in earlyext.conf.
    public var policy: String?
    /// The file, as a path under the root: "/etc/earlyext/select.d/k8s.conf".
    public var source: String

    public init(name: String, url: String, sha256: String?, required: Bool, path: String, policy: String?, source: String) {
        self.name = name
        self.url = url
        self.sha256 = sha256
        self.required = required
        self.path = path
        self.policy = policy
        self.source = source
    }
}

/// What reading one selection file gave. `selection` is nil when there are errors; `required`
/// says whether the file asked for `Required=yes` even so (so a broken required selection can
/// stop the boot).
public struct SelectionParse: Sendable {
    public var selection: Selection?
    public var warnings: [String] = []
    public var errors: [String] = []
    public var required = false
    public var name: String?
}

extension Selection {
    /// The keys of `[Extension]`.
    public static let keys = ["Name", "Url", "SHA256", "Required", "Path", "Policy"]
    /// The values `Policy=` takes.
    public static let policies = ["any", "verity", "signed"]

    /// Parses and validates the text of a selection file; `source` names it in messages.
    ///
    /// - Unknown keys and sections are warnings.
    /// - Errors (each naming the file, line and key): a malformed line, a missing `Name=` or
    ///   `Url=`, an invalid name, an unsupported URL, an `SHA256=` that is not 64 hex digits, a
    ///   `Required=` that is not a boolean, a `Path=` that is relative, not normalized or does not
    ///   end in `.raw`, an unknown `Policy=`, and an http(s) URL without `SHA256=`.
    ///   (`Verity=`, which would make the image self-verifying, is not implemented yet: until it
    ///   is, every http(s) download needs its digest.)
    public static func parse(_ text: String, source: String) -> SelectionParse {
        var result = SelectionParse()
        let ini = INIFile.parse(text)
        for problem in ini.problems { result.errors.append("\(source):\(problem.line): \(problem.message)") }
        for section in ini.sections where section != "Extension" {
            result.warnings.append("\(source): unknown section [\(section)], ignored")
        }
        var last: [String: INIFile.Entry] = [:]
        for entry in ini.entries where entry.section == "Extension" {
            if Self.keys.contains(entry.key) {
                last[entry.key] = entry
            } else {
                result.warnings.append("\(source):\(entry.line): unknown key \(entry.key)=, ignored")
            }
        }
        func bad(_ key: String, _ reason: String) {
            let line = last[key].map { ":\($0.line)" } ?? ""
            result.errors.append("\(source)\(line): \(key)=: \(reason)")
        }

        let name = last["Name"]?.value ?? ""
        if last["Name"] == nil || name.isEmpty {
            bad("Name", "missing")
        } else if !isValidImageName(name) || name.hasSuffix(".raw") {
            bad("Name", "'\(name)' is not a valid extension name")
        } else {
            result.name = name
        }

        let url = last["Url"]?.value ?? ""
        if last["Url"] == nil || url.isEmpty {
            bad("Url", "missing")
        } else if !isSupportedURL(url) {
            bad("Url", "'\(url)' is not an http://, https:// or file:// URL")
        }

        var sha256: String?
        if let value = last["SHA256"]?.value, !value.isEmpty {
            let hex = value.lowercased().hasPrefix("sha256:") ? String(value.dropFirst(7)) : value
            if hex.utf8.count == 64, hex.utf8.allSatisfy(\.isHexDigit) {
                sha256 = hex.lowercased()
            } else {
                bad("SHA256", "'\(value)' is not 64 hex digits")
            }
        }

        if let value = last["Required"]?.value, !value.isEmpty {
            if let parsed = parseBoolean(value) { result.required = parsed } else { bad("Required", "'\(value)' is not a boolean") }
        }

        var path = "/etc/extensions/\(name).raw"
        if let value = last["Path"]?.value, !value.isEmpty {
            let absolute = value.hasPrefix("/") ? value : "/" + value
            if !isNormalizedAbsolutePath(absolute) || absolute == "/" {
                bad("Path", "'\(value)' is not a normalized path under the root")
            } else if !absolute.hasSuffix(".raw") {
                bad("Path", "'\(value)' does not end in .raw (systemd-sysext would not see it)")
            } else {
                path = absolute
                if !Discovery.sysextSearchDirs.contains(where: { absolute.hasPrefix($0 + "/") }) {
                    result.warnings.append("\(source):\(last["Path"]!.line): Path=\(value) is outside \(Discovery.sysextSearchDirs.joined(separator: ", ")): it is fetched but not merged unless something links to it")
                }
            }
        }

        var policy: String?
        if let value = last["Policy"]?.value, !value.isEmpty {
            if Self.policies.contains(value) { policy = value } else {
                bad("Policy", "'\(value)' is not one of \(Self.policies.joined(separator: ", "))")
            }
        }

        let lowered = url.lowercased()
        if sha256 == nil, last["SHA256"].map({ $0.value.isEmpty }) ?? true,
           lowered.hasPrefix("http://") || lowered.hasPrefix("https://") {
            bad("SHA256", "missing: required for http(s) URLs")
        }

        if result.errors.isEmpty {
            result.selection = Selection(name: name, url: url, sha256: sha256, required: result.required,
                                         path: path, policy: policy, source: source)
        }
        return result
    }
}

/// All selection files under a root, after precedence and masking.
public struct SelectionSet: Sendable {
    public var selections: [Selection] = []
    /// Files that failed validation: (the parse, the file).
    public var rejected: [SelectionParse] = []
    public var warnings: [String] = []
    /// Masked file names, with the mask: "k8s.conf (masked by /etc/earlyext/select.d/k8s.conf)".
    public var masked: [String] = []
}

/// The selection dirs, highest precedence first.
public let selectionDirs = ["/etc/earlyext/select.d", "/usr/lib/earlyext/select.d"]

/// Reads `ROOT/etc/earlyext/select.d/*.conf` and `ROOT/usr/lib/earlyext/select.d/*.conf`:
/// - a file name in `etc` overrides the same name in `usr/lib`;
/// - an empty file, or a symlink to `/dev/null`, masks the name;
/// - files are read in file name order; symlinks are resolved inside the root;
/// - two files selecting the same `Name=` or the same `Path=`: the first (by file name) wins, the
///   second is rejected.
/// Missing dirs are fine. Throws only if the root cannot be opened.
public func readSelections(root: String) throws -> SelectionSet {
    var set = SelectionSet()
    let files = try listConfigFiles(root: root, dirs: selectionDirs, suffixes: [".conf"])
    set.warnings += files.warnings
    for file in files.masked { set.masked.append(file) }
    var names: [String: String] = [:]
    var paths: [String: String] = [:]
    for file in files.files {
        var parse = Selection.parse(file.text, source: file.path)
        if let selection = parse.selection {
            if let other = names[selection.name] {
                parse.errors.append("\(file.path): Name=\(selection.name) is already selected by \(other)")
            } else if let other = paths[selection.path] {
                parse.errors.append("\(file.path): Path=\(selection.path) is already used by \(other)")
            }
            if !parse.errors.isEmpty { parse.selection = nil }
        }
        set.warnings += parse.warnings
        if let selection = parse.selection {
            names[selection.name] = file.path
            paths[selection.path] = file.path
            set.selections.append(selection)
        } else {
            set.rejected.append(parse)
        }
    }
    return set
}

// MARK: - Config dirs with precedence and masking

/// A config file that won its name.
struct ConfigFile {
    /// The path under the root: "/etc/earlyext/select.d/k8s.conf".
    var path: String
    /// The dir it was found in (one of `dirs`).
    var dir: String
    var fileName: String
    var text: String
}

/// Lists `*SUFFIX` files in `dirs` (highest precedence first) under `root`, systemd's
/// conf_files rules: the first dir with a file name wins; an empty file or a symlink to
/// /dev/null there masks it. Hidden files are ignored. Returns the winners sorted by file name.
func listConfigFiles(root: String, dirs: [String], suffixes: [String], limit: Int = 1 << 20) throws
    -> (files: [ConfigFile], masked: [String], warnings: [String]) {
    let rootFD = try openRoot(root)
    let prefix = hostPrefix(forRoot: root)
    var taken: Set<String> = []
    var files: [ConfigFile] = []
    var masked: [String] = []
    var warnings: [String] = []
    for dir in dirs {
        guard let directory = try? resolve(inside: rootFD.rawValue, dir, rootName: "the root \(root)"), directory.isDirectory,
              let dirFD = try? openAt(rootFD.rawValue, directory.relative, O_RDONLY | O_DIRECTORY),
              let entries = try? directoryEntries(dirFD.rawValue)
        else { continue }
        for entry in entries.map(\.name).sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        where !entry.hasPrefix(".") && suffixes.contains(where: { entry.hasSuffix($0) }) {
            guard taken.insert(entry).inserted else { continue }
            let path = dir + "/" + entry
            if let link = try? readLinkAt(dirFD.rawValue, entry), link.split(separator: "/") == ["dev", "null"], link.hasPrefix("/") {
                masked.append("\(entry) (masked by \(path))")
                continue
            }
            do {
                let resolved = try resolve(inside: rootFD.rawValue, directory.path + "/" + entry, rootName: "the root \(root)")
                if resolved.path == "/dev/null" {
                    masked.append("\(entry) (masked by \(path))")
                    continue
                }
                guard resolved.isRegularFile else {
                    warnings.append("\(prefix)\(path): not a regular file, ignored")
                    continue
                }
                let text = try readResolvedFile(rootFD.rawValue, resolved, limit: limit)
                if text.utf8.allSatisfy(\.isWhitespace) {
                    masked.append("\(entry) (masked by empty \(path))")
                    continue
                }
                files.append(ConfigFile(path: path, dir: dir, fileName: entry, text: text))
            } catch let failure as ResolveFailure {
                warnings.append("\(prefix)\(path): \(failure.reason), ignored")
            } catch {
                warnings.append("\(prefix)\(path): cannot read: \(error), ignored")
            }
        }
    }
    files.sort { $0.fileName.utf8.lexicographicallyPrecedes($1.fileName.utf8) }
    return (files, masked, warnings)
}
