import CShim
import Glibc

/// All transfers under a root.
public struct TransferSet: Sendable {
    public var transfers: [Transfer] = []
    /// Transfers that cannot be used, one message each naming the file and every reason.
    public var skipped: [String] = []
    public var warnings: [String] = []
    public var masked: [String] = []
}

/// The base dirs searched for `sysupdate.d` and `sysupdate.*.d`, highest precedence first.
public let sysupdateBaseDirs = ["/etc", "/run", "/usr/lib"]

/// Reads the sysupdate transfers under `root`: `*.transfer` and `*.conf` in `sysupdate.d` and in
/// every component dir `sysupdate.NAME.d`, each under `etc`, `run` and `usr/lib`.
/// - The same file name in the same component: `etc` wins over `run` over `usr/lib`; an empty
///   file or a symlink to /dev/null masks it.
/// - Drop-ins `FILE.d/*.conf` (same precedence rules) are applied after the file, in file name
///   order, as systemd does.
/// - Transfers come out by component, then file name.
/// Throws only if the root cannot be opened.
public func readTransfers(root: String, specifiers: SpecifierValues) throws -> TransferSet {
    var set = TransferSet()
    for dirName in try componentDirs(root: root) {
        let component: String? = dirName == "sysupdate.d" ? nil : String(dirName.dropFirst("sysupdate.".count).dropLast(2))
        let dirs = sysupdateBaseDirs.map { "\($0)/\(dirName)" }
        let listing = try listConfigFiles(root: root, dirs: dirs, suffixes: [".transfer", ".conf"])
        set.warnings += listing.warnings
        set.masked += listing.masked.map { "\(dirName)/\($0)" }
        for file in listing.files {
            let dropIns = try listConfigFiles(root: root, dirs: dirs.map { "\($0)/\(file.fileName).d" }, suffixes: [".conf"])
            set.warnings += dropIns.warnings
            let id = file.fileName.hasSuffix(".transfer") ? String(file.fileName.dropLast(9)) : String(file.fileName.dropLast(5))
            let parse = Transfer.parse(files: [(file.path, file.text)] + dropIns.files.map { ($0.path, $0.text) },
                                       id: id, component: component, specifiers: specifiers)
            set.warnings += parse.warnings
            if let transfer = parse.transfer {
                set.transfers.append(transfer)
            } else {
                set.skipped.append("transfer \(file.path) skipped: " + parse.errors.joined(separator: "; "))
            }
        }
    }
    return set
}

/// `sysupdate.d` (when present) and the `sysupdate.NAME.d` dirs found under any base dir, sorted.
private func componentDirs(root: String) throws -> [String] {
    let rootFD = try openRoot(root)
    var names: Set<String> = []
    for base in sysupdateBaseDirs {
        guard let directory = try? resolve(inside: rootFD.rawValue, base, rootName: "the root \(root)"), directory.isDirectory,
              let fd = try? openAt(rootFD.rawValue, directory.relative, O_RDONLY | O_DIRECTORY),
              let entries = try? directoryEntries(fd.rawValue)
        else { continue }
        for entry in entries where entry.name.hasPrefix("sysupdate.") && entry.name.hasSuffix(".d") {
            if entry.name == "sysupdate.d" || entry.name.count > "sysupdate..d".count {
                names.insert(entry.name)
            }
        }
    }
    return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
}
