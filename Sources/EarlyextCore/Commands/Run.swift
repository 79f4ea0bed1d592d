import CShim
import Glibc

/// Exit statuses. `merge` and `refresh` use `optionalFailure` when they failed but no required
/// extension was affected: the initrd unit counts it as success (`SuccessExitStatus=3`), so an
/// optional extension never stops the boot, while a required one does.
public enum ExitStatus {
    public static let success: Int32 = 0
    public static let failure: Int32 = 1
    public static let usage: Int32 = 2
    public static let optionalFailure: Int32 = 3
}

/// The program: argv in, exit status out. `main.swift` calls only this.
public func run(arguments: [String]) -> Int32 {
    let invocation: Invocation
    do {
        invocation = try parseArguments(arguments)
    } catch {
        writeError("earlyext: \(error.message)\nTry 'earlyext --help' for more information.\n")
        return ExitStatus.usage
    }
    switch invocation {
    case .help(let command):
        writeOutput(helpText(for: command))
        return ExitStatus.success
    case .version:
        writeOutput(versionText + "\n")
        return ExitStatus.success
    case .run(let command, let options, let operands):
        let log = Log(level: options.logLevel)
        let environment = Environment(root: options.root ?? Environment.defaultRoot(),
                                      stateDir: options.stateDir ?? "/run/earlyext")
        var engine = Engine(environment: environment, log: log)
        do {
            try configure(&engine, options: options)
        } catch {
            log.error("\(error)")
            return ExitStatus.failure
        }
        do {
            try Commands(engine: engine, options: options).run(command, operands: operands)
            return ExitStatus.success
        } catch {
            log.error("\(error)")
            let requiredLost = (error as? EarlyextError)?.code == .requiredFailed || !engine.required.isEmpty
            if (command == .merge || command == .refresh) && !requiredLost { return ExitStatus.optionalFailure }
            return ExitStatus.failure
        }
    }
}

/// The engine's configuration: ROOT/etc/earlyext/earlyext.conf (`[Fetch]`, `[Policy]`), the
/// selection files (required names, per-image policies and digests), the trusted certificates.
/// - A bad `[Fetch]` value is reported and the default used: a typo must not stop a boot.
/// - A bad `[Policy]` fails the run: a broken policy must never become `Require=any`.
func configure(_ engine: inout Engine, options: Options) throws {
    let environment = engine.environment
    let log = engine.log
    var fetch = FetchOptions()
    fetch.offline = options.offline
    fetch.caFile = FetchOptions.defaultCABundle(root: environment.rootForDisplay)
    let path = environment.root + "/etc/earlyext/earlyext.conf"
    if let text = try? readTextFile(at: AT_FDCWD, path) {
        let config = INIFile.parse(text)
        for problem in config.problems { log.error("\(path): \(problem)") }
        let fetchResult = fetch.apply(config: config, source: path)
        let policyResult = engine.policy.apply(config: config, source: path)
        for warning in fetchResult.warnings + policyResult.warnings { log.warning(warning) }
        for error in fetchResult.errors { log.error(error) }
        if !policyResult.errors.isEmpty {
            throw EarlyextError(.config, policyResult.errors.joined(separator: "; "))
        }
    }
    engine.fetchOptions = fetch
    engine.noReload = options.noReload
    engine.selections = try? readSelections(root: environment.rootForDisplay)
    if let selections = engine.selections {
        engine.required = Engine.requiredExtensions(in: selections)
        for selection in selections.selections {
            if let text = selection.policy, let policy = RequiredVerification(rawValue: text) {
                engine.imagePolicies[selection.name] = policy
            }
            if let digest = selection.sha256 { engine.expectedDigests[selection.name] = digest }
        }
    }
    // In the initrd, the initrd's own verity.d counts as well as the root's (which Ignition may
    // have written).
    var roots = [environment.rootForDisplay]
    if Coexistence.runningInInitrd && !environment.root.isEmpty { roots.append("/") }
    do {
        engine.trust = try TrustStore.load(roots: roots)
        for problem in engine.trust.problems { log.warning(problem) }
    } catch {
        log.warning("cannot read the trusted certificates: \(error)")
    }
}

func writeOutput(_ text: String) {
    _ = text.withCString { fputs($0, stdout) }
    fflush(stdout)
}

func writeError(_ text: String) {
    _ = text.withCString { fputs($0, stderr) }
}

/// One function per command; each reads the engine's results and prints them.
struct Commands {
    let engine: Engine
    let options: Options

    func run(_ command: Command, operands: [String]) throws {
        switch command {
        case .plan: try plan()
        case .list: try list()
        case .merge, .refresh: _ = try engine.merge()
        case .unmerge: try engine.unmerge()
        case .status: try status()
        case .verify: try verify(operands)
        case .fetch: try fetch()
        }
    }

    // MARK: fetch

    func fetch() throws {
        let report = try engine.fetch(update: options.update)
        for result in report.results {
            writeOutput("\(result.name): fetched \(result.url) -> \(result.destination) (\(result.bytes) bytes, sha256 \(result.sha256))\n")
        }
        for name in report.plan.satisfied { writeOutput("\(name): present\n") }
        if report.results.isEmpty && report.failures.isEmpty { writeOutput("nothing to fetch\n") }
        if !report.failures.isEmpty {
            // Optional downloads: reported above, not fatal (a required one threw already).
            engine.log.warning("\(report.failures.count) optional download(s) failed")
        }
    }

    // MARK: plan and list

    /// What `fetch` would download. Read-only: listing a transfer's SHA256SUMS is a GET, and with
    /// `--offline` nothing touches the network.
    func plannedFetches() -> FetchPlan? {
        guard let host = try? Host.detect(root: engine.environment.rootForDisplay) else { return nil }
        return try? planFetches(root: engine.environment.rootForDisplay, update: false, host: host,
                                log: engine.log, options: engine.fetchOptions, selections: engine.selections)
    }

    func plan() throws {
        let fetches = plannedFetches()
        let survey = try engine.survey()
        if options.json {
            let fetchEntries: [JSON] = (fetches?.requests ?? []).map { r in
                .object([("name", .string(r.name)), ("verdict", .string("fetch")), ("url", .string(r.url)),
                         ("sha256", r.sha256.map(JSON.string) ?? .null), ("destination", .string(r.destination)),
                         ("source", .string(r.source)), ("version", r.version.map(JSON.string) ?? .null),
                         ("required", .bool(r.required))])
            }
            writeOutput(JSON.object([
                ("root", .string(engine.environment.rootForDisplay)),
                ("host", hostJSON(survey.host)),
                ("entries", .array(survey.plan.entries.map(entryJSON))),
                ("fetch", .array(fetchEntries)),
                ("fetch_problems", .array((fetches?.problems ?? []).map(JSON.string))),
            ]).render(pretty: true) + "\n")
            return
        }
        var rows = [["NAME", "VERDICT", "LAYER", "REASON"]]
        for r in fetches?.requests ?? [] {
            rows.append([r.name, "fetch", "-", "\(r.url) -> \(r.destination) (from \(r.source))\(r.required ? ", required" : "")"])
        }
        var layer = 0
        for entry in survey.plan.entries {
            if entry.verdict == .merge { layer += 1 }
            rows.append([entry.name, entry.verdict.rawValue, entry.verdict == .merge ? String(layer) : "-", entry.reason])
        }
        writeOutput(table(rows))
        for problem in fetches?.problems ?? [] { writeOutput("fetch problem: \(problem)\n") }
        let count = survey.plan.toMerge.count
        writeOutput("\n\(count) to merge into \(engine.environment.rootForDisplay) (host \(survey.host.osRelease["ID"] ?? "?") \(survey.host.osRelease["VERSION_ID"] ?? ""), scope \(survey.host.scope.rawValue), \(survey.host.architecture)); highest layer on top.\n")
    }

    func list() throws {
        let survey = try engine.survey()
        if options.json {
            writeOutput(JSON.array(survey.plan.entries.map(entryJSON)).render(pretty: true) + "\n")
            return
        }
        var rows = [["NAME", "SOURCE", "FORMAT", "VERDICT"]]
        for entry in survey.plan.entries {
            rows.append([entry.name, entry.candidate?.entryPath ?? "-",
                         survey.opened[entry.name]?.format ?? entry.candidate?.kind.rawValue ?? "-",
                         entry.verdict.rawValue])
        }
        writeOutput(table(rows))
    }

    func hostJSON(_ host: Host) -> JSON {
        .object([("id", .string(host.osRelease["ID"] ?? "")),
                 ("version_id", host.osRelease["VERSION_ID"].map(JSON.string) ?? .null),
                 ("sysext_level", host.osRelease["SYSEXT_LEVEL"].map(JSON.string) ?? .null),
                 ("scope", .string(host.scope.rawValue)),
                 ("architecture", .string(host.architecture))])
    }

    func entryJSON(_ entry: PlanEntry) -> JSON {
        .object([("name", .string(entry.name)),
                 ("source", entry.candidate.map { .string($0.entryPath) } ?? .null),
                 ("search_dir", entry.candidate.map { .string($0.searchDir) } ?? .null),
                 ("kind", entry.candidate.map { .string($0.kind.rawValue) } ?? .null),
                 ("verdict", .string(entry.verdict.rawValue)),
                 ("reason", .string(entry.reason)),
                 ("hierarchies", .array(entry.hierarchies.map(JSON.string)))])
    }

    // MARK: status

    func status() throws {
        let environment = engine.environment
        guard let record = StateRecord.load(from: environment.stateDir) else {
            if options.json {
                writeOutput(JSON.object([("root", .string(environment.rootForDisplay)), ("hierarchies", .array([]))])
                    .render(pretty: true) + "\n")
            } else {
                writeOutput("No merge recorded in \(environment.stateDir) for \(environment.rootForDisplay).\n")
            }
            return
        }
        let live = try record.hierarchies.map(engine.isLive)
        if options.json {
            var json = record.json
            if case .object(var fields) = json, let index = fields.firstIndex(where: { $0.0 == "hierarchies" }),
               case .array(let items) = fields[index].1 {
                fields[index].1 = .array(zip(items, live).map { item, isLive in
                    guard case .object(let f) = item else { return item }
                    return .object(f + [("mounted", .bool(isLive))])
                })
                json = .object(fields)
            }
            writeOutput(json.render(pretty: true) + "\n")
            return
        }
        var rows = [["HIERARCHY", "EXTENSIONS", "SINCE", "STATE"]]
        for (h, isLive) in zip(record.hierarchies, live) {
            rows.append([h.hostPath(in: environment), h.extensions.joined(separator: " "), record.mergedAt,
                         isLive ? "merged" : "NOT MOUNTED (unmerged behind earlyext's back?)"])
        }
        writeOutput(table(rows))
        let extensions = record.details.first { $0.0 == "extensions" }?.1.arrayValue ?? []
        if !extensions.isEmpty {
            writeOutput("\n")
            var detail = [["EXTENSION", "VERSION", "FORMAT", "SOURCE", "VERIFIED"]]
            for e in extensions {
                detail.append([e["name"]?.stringValue ?? "?", e["version"]?.stringValue ?? "-",
                               e["format"]?.stringValue ?? "-", e["source"]?.stringValue ?? "-",
                               e["verified"]?.stringValue ?? "-"])
            }
            writeOutput(table(detail))
            for e in extensions {
                let modules = e["modules"]?.arrayValue?.compactMap(\.stringValue) ?? []
                if !modules.isEmpty {
                    writeOutput("\(e["name"]?.stringValue ?? "?") ships kernel modules: \(modules.joined(separator: " "))\n")
                }
            }
        }
        let skipped = record.details.first { $0.0 == "skipped" }?.1.arrayValue ?? []
        for s in skipped {
            writeOutput("skipped \(s["name"]?.stringValue ?? "?"): \(s["reason"]?.stringValue ?? "")\n")
        }
        if let error = record.details.first(where: { $0.0 == "last_error" })?.1.stringValue {
            writeOutput("last merge attempt failed: \(error)\n")
        }
        if let timings = record.details.first(where: { $0.0 == "timings_ms" })?.1.objectValue {
            writeOutput("timings (ms): " + timings.map { "\($0.0) \($0.1.render(pretty: false))" }.joined(separator: ", ") + "\n")
        }
    }

    // MARK: verify

    /// Checks images against the host and the policy without merging: verification (digest,
    /// dm-verity hash tree, signature; docs/verity.md), then the release file and the host match.
    func verify(_ images: [String]) throws {
        let environment = engine.environment
        let host = try Host.detect(root: environment.rootForDisplay)
        var failures = 0
        var results: [JSON] = []
        for path in images {
            let (accepted, line, verification) = verifyOne(path, host: host)
            if !accepted { failures += 1 }
            results.append(.object([("image", .string(path)), ("accepted", .bool(accepted)), ("reason", .string(line)),
                                    ("verification", verification.map(\.json) ?? .null)]))
            if !options.json { writeOutput("\(path): \(accepted ? "ok" : "refused"): \(line)\n") }
        }
        if options.json { writeOutput(JSON.array(results).render(pretty: true) + "\n") }
        if failures > 0 {
            throw EarlyextError(.invalidImage, "\(failures) of \(images.count) image(s) refused")
        }
    }

    func verifyOne(_ path: String, host: Host) -> (Bool, String, Verification?) {
        let st: stat
        do { st = try statAt(AT_FDCWD, path) } catch {
            return (false, "cannot stat: \(error)", nil)
        }
        let kind: EntryKind = ee_s_isdir(st.st_mode) != 0 ? .directory : (ee_s_isblk(st.st_mode) != 0 ? .block : .raw)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        let name = strippingSuffixes(base, raw: kind == .raw)
        var verification: Verification?
        if kind != .directory {
            let verdict = verifyImage(path: path, policy: engine.policy.require, trust: engine.trust,
                                      architecture: host.architecture)
            guard verdict.accepted else {
                let reason = verdict.reason.hasPrefix("refused: ") ? String(verdict.reason.dropFirst(9)) : verdict.reason
                return (false, reason, verdict.verification)
            }
            verification = verdict.verification
            // Without device-mapper an image with verity data cannot be mounted verified; its
            // hash tree and signature were checked above, its release file is not.
            if verdict.verification.kind == .verity || verdict.verification.kind == .signed, !DeviceMapper.available {
                return (true, verdict.reason + "; release file not checked (no device-mapper here)", verification)
            }
        }
        let candidate = Candidate(name: name, searchDir: "", entryPath: path, resolvedPath: path, kind: kind)
        switch engine.inspect(candidate, architecture: host.architecture, digest: .none) {
        case .failure(let error):
            return (false, error.description, verification)
        case .success(let result):
            switch result.inspection.release {
            case .missing(let reason), .refused(let reason):
                return (false, reason, verification)
            case .found(let release, _):
                if case .incompatible(let reason) = matchExtension(name: name, release: release, host: host) {
                    return (false, reason, verification)
                }
                let how = (verification ?? result.image.verification).summary
                return (true, "\(result.image.opened.format), extension \(name), matches host, hierarchies \(result.inspection.hierarchies.joined(separator: " ")); \(how)",
                        verification ?? result.image.verification)
            }
        }
    }
}

/// Left-aligned columns separated by two spaces.
func table(_ rows: [[String]]) -> String {
    guard let columns = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (i, cell) in row.enumerated() where i < columns - 1 { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count + 2)
        }.joined()
    }.joined(separator: "\n") + "\n"
}
