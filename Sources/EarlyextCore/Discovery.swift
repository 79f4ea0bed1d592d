import CShim
import Glibc

public enum Discovery {
    /// systemd-sysext's search dirs, highest precedence first (each under the root).
    /// `/usr/lib/extensions` is deliberately absent: overlayfs refuses a lowerdir below another.
    public static let sysextSearchDirs = ["/etc/extensions", "/run/extensions", "/var/lib/extensions"]
}

/// What an image entry is.
public enum EntryKind: String, Sendable {
    case raw, directory, block
}

/// An extension image found in a search dir.
public struct Candidate: Equatable, Sendable {
    /// "foo" for foo.raw / foo.sysext.raw / foo/
    public var name: String
    /// "/etc/extensions"
    public var searchDir: String
    /// The path under the root as listed: "/etc/extensions/foo.raw".
    public var entryPath: String
    /// The host path after chasing symlinks inside the root.
    public var resolvedPath: String
    public var kind: EntryKind

    public init(name: String, searchDir: String, entryPath: String, resolvedPath: String, kind: EntryKind) {
        self.name = name
        self.searchDir = searchDir
        self.entryPath = entryPath
        self.resolvedPath = resolvedPath
        self.kind = kind
    }
}

/// A name masked by an empty directory or a symlink to /dev/null.
public struct Masked: Equatable, Sendable {
    public var name: String
    public var searchDir: String
    public var entryPath: String

    public init(name: String, searchDir: String, entryPath: String) {
        self.name = name
        self.searchDir = searchDir
        self.entryPath = entryPath
    }
}

/// An entry that looked like an image but cannot be used (a link leaving the root, a loop, a
/// dangling link, an invalid name, an unsupported file type).
public struct Skipped: Equatable, Sendable {
    public var entryPath: String
    public var reason: String

    public init(entryPath: String, reason: String) {
        self.entryPath = entryPath
        self.reason = reason
    }
}

public struct DiscoveryResult: Equatable, Sendable {
    /// The winner for each name, sorted by name with `compareVersions` (bottom layer first).
    public var candidates: [Candidate]
    /// Masked names (the mask that won), sorted by name.
    public var masked: [Masked]
    /// Entries whose name was already taken by a higher-precedence entry (or an earlier entry of the
    /// same dir), in discovery order.
    public var shadowed: [Candidate]
    /// In discovery order.
    public var skipped: [Skipped]

    public init(candidates: [Candidate] = [], masked: [Masked] = [], shadowed: [Candidate] = [], skipped: [Skipped] = []) {
        self.candidates = candidates
        self.masked = masked
        self.shadowed = shadowed
        self.skipped = skipped
    }
}

/// systemd's `image_name_is_valid()`: a valid file name (non-empty, not `.`/`..`, no `/`, at most
/// 255 bytes), no control characters, valid UTF-8, not a `.#` temporary file.
func isValidImageName(_ name: String) -> Bool {
    guard !name.isEmpty, name != ".", name != "..", name.utf8.count <= Int(NAME_MAX), !name.hasPrefix(".#") else {
        return false
    }
    // Names come from readdir() through String(cString:), which replaces invalid UTF-8 with U+FFFD.
    return !name.unicodeScalars.contains { $0 == "/" || $0.value < 0x20 || $0.value == 0x7f || $0 == "\u{FFFD}" }
}

/// Lists the extension images under `root` in `searchDirs` (highest precedence first), the way
/// systemd-sysext does:
/// - `NAME.raw` regular files (`NAME.sysext.raw` → NAME), directories (`NAME.sysext/` → NAME, as
///   systemd strips the class suffix from directories too), block devices (the node name);
/// - hidden entries are ignored, and so are regular files without `.raw`;
/// - symlinks are chased inside the root (see `resolveInsideRoot`); one that would leave the root,
///   loops or dangles is skipped with a reason and does not claim its name (as in systemd, where
///   such an entry is passed over);
/// - an empty directory, or a symlink whose target is `/dev/null`, masks the name;
/// - the first search dir with a name wins; within one dir a mask wins, then the first file name
///   in byte order. Later entries with a taken name are `shadowed` (later masks are dropped).
/// Missing search dirs are fine. Throws only if the root or a search dir cannot be read.
public func discoverExtensions(root: String, searchDirs: [String] = Discovery.sysextSearchDirs) throws -> DiscoveryResult {
    let rootFD = try openRoot(root)
    let scanner = EntryScanner(rootFD: rootFD.rawValue, prefix: hostPrefix(forRoot: root), rootName: "the root \(root)")
    var result = DiscoveryResult()
    var taken: Set<String> = []

    for searchDir in searchDirs {
        let found: [ScannedEntry]
        do {
            guard let entries = try scanner.scan(searchDir: searchDir) else { continue }
            found = entries
        } catch let unusable as UnusableSearchDir {
            result.skipped.append(unusable.skipped)
            continue
        }
        // Masks first, then the entries in file name order (scan returns them sorted).
        let ordered = found.filter(\.isMask) + found.filter { !$0.isMask }
        for entry in ordered {
            switch entry {
            case .skipped(let skip):
                result.skipped.append(skip)
            case .masked(let mask):
                if taken.insert(mask.name).inserted { result.masked.append(mask) }
            case .candidate(let candidate):
                if taken.insert(candidate.name).inserted {
                    result.candidates.append(candidate)
                } else {
                    result.shadowed.append(candidate)
                }
            }
        }
    }
    rootFD.close() // only now: the scanner uses its number
    result.candidates.sort { compareVersions($0.name, $1.name) < 0 }
    result.masked.sort { compareVersions($0.name, $1.name) < 0 }
    return result
}

/// A search dir that exists but cannot be used (thrown by `EntryScanner.scan`).
private struct UnusableSearchDir: Error {
    var skipped: Skipped
}

private enum ScannedEntry {
    case candidate(Candidate)
    case masked(Masked)
    case skipped(Skipped)

    var isMask: Bool {
        if case .masked = self { return true }
        return false
    }
}

/// Classifies the entries of one search dir.
private struct EntryScanner {
    let rootFD: Int32
    let prefix: String
    let rootName: String

    /// The classified entries of `searchDir`, in file name order; nil if the dir does not exist.
    /// Throws `UnusableSearchDir` if the search dir itself cannot be used, an `EarlyextError` if it cannot be read.
    func scan(searchDir: String) throws -> [ScannedEntry]? {
        let directory: ResolvedPath
        do {
            directory = try resolve(inside: rootFD, searchDir, rootName: rootName)
        } catch where error.isNotFound {
            return nil
        } catch {
            throw UnusableSearchDir(skipped: Skipped(entryPath: searchDir, reason: "search dir cannot be resolved: \(error.reason)"))
        }
        guard directory.isDirectory else {
            throw UnusableSearchDir(skipped: Skipped(entryPath: searchDir, reason: "search dir is not a directory"))
        }

        let directoryFD: FileDescriptor
        let names: [String]
        do {
            directoryFD = try openAt(rootFD, directory.relative, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        } catch {
            throw EarlyextError(.discovery, "cannot open \(prefix)\(searchDir)", errno: error)
        }
        do {
            names = try directoryEntries(directoryFD.rawValue).map(\.name)
        } catch {
            throw EarlyextError(.discovery, "cannot list \(prefix)\(searchDir)", errno: error)
        }
        let listed = directoryFD.rawValue
        // Like systemd, a leading dot does not hide an image; only ".#" temporary files are ignored.
        let entries = names.filter { !$0.hasPrefix(".#") }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            .compactMap { classify($0, searchDir: searchDir, directory: directory, directoryFD: listed) }
        directoryFD.close() // only now: `listed` is used above
        return entries
    }

    /// nil for entries that are not images at all (regular files without `.raw`).
    private func classify(_ fileName: String, searchDir: String, directory: ResolvedPath, directoryFD: Int32) -> ScannedEntry? {
        let entryPath = (searchDir.hasSuffix("/") ? searchDir : searchDir + "/") + fileName
        func skip(_ reason: String) -> ScannedEntry { .skipped(Skipped(entryPath: entryPath, reason: reason)) }
        func named(_ name: String, _ make: (String) -> ScannedEntry) -> ScannedEntry {
            isValidImageName(name) ? make(name) : skip("'\(name)' is not a valid extension name")
        }
        func mask(_ name: String) -> ScannedEntry {
            named(name) { .masked(Masked(name: $0, searchDir: searchDir, entryPath: entryPath)) }
        }

        let linkStatus: stat
        do {
            linkStatus = try statAt(directoryFD, fileName, flags: AT_SYMLINK_NOFOLLOW)
        } catch {
            return error == .noSuchFile ? nil : skip("cannot stat: \(error)") // nil: vanished meanwhile
        }

        var target = ResolvedPath(components: directory.components + [fileName], status: linkStatus)
        if ee_s_islnk(linkStatus.st_mode) != 0 {
            let link: String
            do { link = try readLinkAt(directoryFD, fileName) } catch { return skip("cannot read symlink: \(error)") }
            if isDevNull(link) { return mask(strippingSuffixes(fileName, raw: true)) }
            do {
                target = try resolve(inside: rootFD, directory.path + "/" + fileName, rootName: rootName)
            } catch {
                switch error {
                case .escapes(let text), .tooManyLinks(let text):
                    return skip(text)
                case .system(let errno, let at):
                    return skip("symlink \(entryPath) -> \(link) cannot be resolved (at \(at)): \(errno)")
                }
            }
            if target.path == "/dev/null" { return mask(strippingSuffixes(fileName, raw: true)) }
        }

        let resolvedPath = prefix + target.path
        func image(_ name: String, _ kind: EntryKind) -> ScannedEntry {
            named(name) {
                .candidate(Candidate(name: $0, searchDir: searchDir, entryPath: entryPath, resolvedPath: resolvedPath, kind: kind))
            }
        }
        let mode = target.status.st_mode
        if ee_s_isreg(mode) != 0 {
            guard fileName.hasSuffix(".raw") else { return nil }
            return image(strippingSuffixes(fileName, raw: true), .raw)
        }
        if ee_s_isdir(mode) != 0 {
            if fileName.hasSuffix(".v") { return skip("versioned (.v) directories are not supported") }
            let name = strippingSuffixes(fileName, raw: false)
            switch isEmptyDirectory(target) {
            case true?: return mask(name)
            case false?: return image(name, .directory)
            case nil: return skip("cannot list directory \(target.path)")
            }
        }
        if ee_s_isblk(mode) != 0 {
            return image(fileName, .block)
        }
        return skip("unsupported file type (not a regular .raw file, directory or block device)")
    }

    private func isEmptyDirectory(_ directory: ResolvedPath) -> Bool? {
        guard let fd = try? openAt(rootFD, directory.relative, O_RDONLY | O_DIRECTORY | O_NOFOLLOW),
              let entries = try? directoryEntries(fd.rawValue) else { return nil }
        return entries.isEmpty
    }
}

/// "foo.sysext.raw" → "foo"; "foo.raw" → "foo"; with `raw: false` only ".sysext" is stripped.
func strippingSuffixes(_ fileName: String, raw: Bool) -> String {
    var name = Substring(fileName)
    if raw, name.hasSuffix(".raw") { name = name.dropLast(4) }
    if name.hasSuffix(".sysext") { name = name.dropLast(7) }
    return String(name)
}

/// Whether a symlink target names /dev/null ("/dev/null", "//dev/./null", …), judged by the text
/// of the target as systemd does, not by what it resolves to inside the root.
private func isDevNull(_ target: String) -> Bool {
    guard target.hasPrefix("/") else { return false }
    return target.split(separator: "/").filter { $0 != "." } == ["dev", "null"]
}
