import CShim
import Glibc

/// What `fetch` would do: the downloads, the extensions already present, and what cannot be
/// fetched and why.
public struct FetchPlan: Sendable {
    /// The downloads, selection files first (by file name), then transfers.
    public var requests: [FetchRequest] = []
    /// Extensions already present locally ("kubernetes"), so nothing is fetched for them.
    public var satisfied: [String] = []
    /// One line each: a selection or transfer that cannot be used, a source that cannot be listed.
    public var problems: [String] = []
    /// The problems that concern a `Required=yes` selection (also in `problems`): the boot must
    /// stop on these.
    public var blocking: [String] = []
    /// Warnings (unknown keys, skipped manifest lines), also sent to the log.
    public var warnings: [String] = []
    /// An offline plan found a transfer with nothing installed, whose source must be listed.
    public var listingNeeded = false

    /// Would doing this plan (or planning it online) use the network?
    public var needsNetwork: Bool { !requests.isEmpty || listingNeeded }

    public init() {}
}

/// Reads the selection files and sysupdate transfers under `root` and decides what to download.
///
/// - A selection is satisfied when its `Path=` exists (resolved inside the root). With `update`,
///   it must also have the selection's SHA-256 (read from the `user.earlyext.sha256` xattr the
///   fetcher leaves, else by hashing the file); otherwise it is fetched again.
/// - A transfer without `update` is satisfied, with no network at all, when its `CurrentSymlink=`
///   resolves to a file or any file in the target directory matches its pattern. Otherwise (or
///   with `update`) its source's `SHA256SUMS` is downloaded (and with `Verify=yes` checked
///   against `SHA256SUMS.gpg`), the newest matching version chosen with `compareVersions`, and a
///   request made unless that version is already installed.
/// - With `options.offline`, nothing is downloaded: a transfer that would need its listing is a
///   problem.
/// - A transfer whose target or `CurrentSymlink` is a selection's `Path=` is a problem: the
///   selection wins.
/// - `selections`: the selection files as the configuration already read them; nil reads them here.
///
/// Throws only if the root cannot be read; everything else is a problem or a warning.
public func planFetches(root: String, update: Bool, host: Host, log: Log,
                        options: FetchOptions = FetchOptions(), selections given: SelectionSet? = nil) throws -> FetchPlan {
    var plan = FetchPlan()
    func warn(_ message: String) {
        plan.warnings.append(message)
        log.warning(message)
    }
    let prefix = hostPrefix(forRoot: root)

    // Selection files.
    let selections = try given ?? readSelections(root: root)
    selections.warnings.forEach(warn)
    for rejected in selections.rejected {
        let message = rejected.errors.joined(separator: "; ")
        plan.problems.append(message)
        if rejected.required { plan.blocking.append(message) }
    }
    var claimed: [String: String] = [:]  // host path → the selection file
    for selection in selections.selections {
        let problem = { (message: String) in
            plan.problems.append(message)
            if selection.required { plan.blocking.append(message) }
        }
        let destination: String
        do {
            destination = try hostPathForCreation(root: root, selection.path)
        } catch {
            problem("\(selection.source): Path=\(selection.path): \(error)")
            continue
        }
        claimed[destination] = selection.source
        switch existingFile(root: root, selection.path) {
        case .missing:
            break
        case .notAFile(let what):
            problem("\(selection.source): \(prefix)\(selection.path) exists and is \(what), not an image file")
            continue
        case .file(let hostPath):
            if !update {
                plan.satisfied.append(selection.name)
                continue
            }
            if let expected = selection.sha256, fileDigest(hostPath) == expected {
                plan.satisfied.append(selection.name)
                continue
            }
        }
        plan.requests.append(FetchRequest(name: selection.name, url: selection.url, sha256: selection.sha256,
                                          destination: destination, required: selection.required,
                                          source: selection.source))
    }

    // Transfers.
    let specifiers = SpecifierValues.detect(root: root, host: host)
    let transfers = try readTransfers(root: root, specifiers: specifiers)
    transfers.warnings.forEach(warn)
    plan.problems += transfers.skipped
    let fetcher = Fetcher(log: log, options: options)
    for transfer in transfers.transfers {
        switch planTransfer(transfer, root: root, update: update, fetcher: fetcher, claimed: claimed, warn: warn) {
        case .satisfied: plan.satisfied.append(transfer.name)
        case .fetch(let request): plan.requests.append(request)
        case .problem(let message): plan.problems.append(message)
        case .needsListing(let message):
            plan.problems.append(message)
            plan.listingNeeded = true
        }
    }
    return plan
}

private enum TransferDecision {
    case satisfied
    case fetch(FetchRequest)
    case problem(String)
    /// Offline, with nothing installed: only listing the source would tell.
    case needsListing(String)
}

private func planTransfer(_ transfer: Transfer, root: String, update: Bool, fetcher: Fetcher,
                          claimed: [String: String], warn: (String) -> Void) -> TransferDecision {
    let origin = "transfer \(transfer.source)"
    let targetDirectory: String
    var linkHostPath: String?
    do {
        targetDirectory = try hostDirectoryForCreation(root: root, transfer.targetPath)
        if let link = transfer.currentSymlink { linkHostPath = try hostPathForCreation(root: root, link) }
    } catch {
        return .problem("\(origin): \(error)")
    }
    for path in [linkHostPath, targetDirectory].compactMap({ $0 }) {
        if let selection = claimed[path] {
            return .problem("\(origin): \(path) is already provided by the selection \(selection); the transfer is ignored")
        }
    }

    // What is installed: the instances in the target directory, and where the symlink leads.
    let installed = localInstances(targetDirectory, patterns: transfer.targetPatterns)
    var linkResolves = false
    if let link = transfer.currentSymlink, case .file = existingFile(root: root, link) { linkResolves = true }
    let newestInstalled = installed.max { compareVersions($0.version, $1.version) < 0 }
    if !update, linkResolves || newestInstalled != nil {
        if !linkResolves, let link = transfer.currentSymlink, let newest = newestInstalled {
            warn("\(origin): \(link) does not lead to an image although \(newest.name) is installed; it is repaired by 'earlyext fetch --update'")
        }
        return .satisfied
    }
    if fetcher.options.offline {
        return .needsListing("\(origin): nothing installed in \(targetDirectory), and listing \(transfer.url) needs the network (offline)")
    }

    // The listing.
    let manifestURL = joinURL(transfer.url, "SHA256SUMS")
    let manifestBytes: [UInt8]
    do {
        manifestBytes = try fetcher.fetchData(manifestURL)
        if transfer.verify {
            let signature = try fetcher.fetchData(joinURL(transfer.url, "SHA256SUMS.gpg"))
            try ManifestSignature.verify(manifest: manifestBytes, signature: signature,
                                         keyring: ManifestSignature.keyring(root: root), url: manifestURL)
        }
    } catch {
        return .problem("\(origin): \(error)")
    }
    let manifest = Manifest.parse(String(decoding: manifestBytes, as: UTF8.self))
    for problem in manifest.problems {
        warn("\(manifestURL):\(problem.line): \(problem.message); line skipped")
    }
    if let expired = manifest.expiredMarker(today: currentTimestamp()) {
        return .problem("\(origin): \(manifestURL) is out of date (BEST-BEFORE-\(expired))")
    }
    var available: [(entry: Manifest.Entry, version: String)] = []
    for entry in manifest.entries {
        guard let version = transfer.sourcePatterns.lazy.compactMap({ $0.match(entry.fileName) }).first else { continue }
        if let minimum = transfer.minVersion, compareVersions(version, minimum) < 0 { continue }
        if let maximum = transfer.maxVersion, compareVersions(version, maximum) > 0 { continue }
        available.append((entry, version))
    }
    guard let newest = available.max(by: { compareVersions($0.version, $1.version) < 0 }) else {
        let patterns = transfer.sourcePatterns.map(\.text).joined(separator: " ")
        return .problem("\(origin): no entry of \(manifestURL) (\(manifest.entries.count) listed) matches MatchPattern=\(patterns)")
    }
    if let installedNewest = newestInstalled, compareVersions(newest.version, installedNewest.version) <= 0, linkResolves || transfer.currentSymlink == nil {
        return .satisfied
    }

    let fileName: String
    do {
        fileName = try transfer.targetPatterns[0].format(version: newest.version)
    } catch {
        return .problem("\(origin): \(error)")
    }
    return .fetch(FetchRequest(
        name: transfer.name, url: joinURL(transfer.url, newest.entry.fileName), sha256: newest.entry.sha256,
        destination: targetDirectory + "/" + fileName, required: false, source: transfer.source,
        currentSymlink: linkHostPath, instancesMax: transfer.instancesMax, mode: transfer.mode,
        version: newest.version, instancePatterns: transfer.targetPatterns.map(\.text),
        protectedVersions: transfer.protectedVersions))
}

// MARK: - Helpers

/// `base` + "/" + `name`, without doubling the slash.
func joinURL(_ base: String, _ name: String) -> String {
    base.hasSuffix("/") ? base + name : base + "/" + name
}

private enum ExistingFile {
    case missing
    case notAFile(String)
    /// The host path of the regular file, symlinks resolved inside the root.
    case file(String)
}

/// What `path` (under the root) leads to, symlinks chased inside the root. A dangling symlink is
/// `missing`.
private func existingFile(root: String, _ path: String) -> ExistingFile {
    guard let rootFD = try? openRoot(root) else { return .missing }
    do {
        let resolved = try resolve(inside: rootFD.rawValue, path, rootName: root)
        if resolved.isRegularFile { return .file(hostPrefix(forRoot: root) + resolved.path) }
        return .notAFile(resolved.isDirectory ? "a directory" : "not a regular file")
    } catch {
        return error.isNotFound ? .missing : .notAFile("unusable (\(error.reason))")
    }
}

/// The SHA-256 of the file at `hostPath`: from the xattr the fetcher sets, else by reading it.
private func fileDigest(_ hostPath: String) -> String? {
    guard let fd = try? openPath(hostPath, O_RDONLY | O_NOCTTY) else { return nil }
    if let stored = (try? extendedAttribute(fd.rawValue, digestAttribute)) ?? nil, stored.count == 64 {
        return String(decoding: stored, as: UTF8.self)
    }
    let hasher = SHA256()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    var offset: Int64 = 0
    while true {
        guard let count = try? readSome(fd.rawValue, into: buffer, at: offset) else { return nil }
        if count == 0 { break }
        hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        offset += Int64(count)
    }
    return hasher.hexDigest()
}

/// The regular files in `directory` (a host path) matching `patterns`, with their versions.
private func localInstances(_ directory: String, patterns: [MatchPattern]) -> [(name: String, version: String)] {
    guard let fd = try? openPath(directory, O_RDONLY | O_DIRECTORY), let entries = try? directoryEntries(fd.rawValue) else { return [] }
    return entries.compactMap { entry in
        guard !entry.name.hasPrefix("."), let version = patterns.lazy.compactMap({ $0.match(entry.name) }).first,
              let status = try? statAt(fd.rawValue, entry.name), ee_s_isreg(status.st_mode) != 0 else { return nil }
        return (entry.name, version)
    }
}

/// The host path for creating `path` (absolute, under the root): its directory resolved inside
/// the root as far as it exists (symlinks chased, never leaving the root), the missing
/// directories and the file name appended as they are.
func hostPathForCreation(root: String, _ path: String) throws -> String {
    let (directory, name) = splitPath(path)
    return try hostDirectoryForCreation(root: root, directory) + "/" + name
}

/// `hostPathForCreation` for a directory.
func hostDirectoryForCreation(root: String, _ path: String) throws -> String {
    let rootFD = try openRoot(root)
    let components = path.split(separator: "/").map(String.init)
    var existing = components.count
    while existing >= 0 {
        let prefix = "/" + components[0..<existing].joined(separator: "/")
        do {
            let resolved = try resolve(inside: rootFD.rawValue, prefix, rootName: "the root \(root)")
            guard resolved.isDirectory else {
                throw EarlyextError(.fetch, "\(hostPrefix(forRoot: root))\(prefix) is not a directory")
            }
            let rest = components[existing...]
            let base = hostPrefix(forRoot: root) + (resolved.path == "/" ? "" : resolved.path)
            return rest.isEmpty ? (base.isEmpty ? "/" : base) : base + "/" + rest.joined(separator: "/")
        } catch let failure as ResolveFailure where failure.isNotFound {
            existing -= 1
        } catch let failure as ResolveFailure {
            throw EarlyextError(.fetch, "\(path): \(failure.reason)")
        }
    }
    throw EarlyextError(.fetch, "\(path): the root \(root) cannot be resolved")
}
