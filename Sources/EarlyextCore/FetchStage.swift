import Glibc

/// The fetch stage of the pipeline (design.md: discover → plan → **fetch** → verify → mount →
/// publish). It runs before discovery, so that discovery sees what it installs.
public struct FetchReport {
    public var plan: FetchPlan
    public var results: [FetchResult] = []
    /// "URL: reason" for each request that failed.
    public var failures: [(request: FetchRequest, message: String)] = []
    public var milliseconds: Double = 0

    var json: [(String, JSON)] {
        [("fetched", .array(results.map { r in
            .object([("name", .string(r.name)), ("url", .string(r.url)), ("bytes", .int(Int(r.bytes))),
                     ("downloaded", .int(Int(r.downloaded))), ("resumed_from", .int(Int(r.resumedFrom))),
                     ("seconds", .double((r.seconds * 1000).rounded() / 1000)), ("sha256", .string(r.sha256)),
                     ("destination", .string(r.destination)), ("attempts", .int(r.attempts))])
        })),
         ("fetch_problems", .array((plan.problems + failures.map(\.message)).map(JSON.string)))]
    }
}

extension Engine {
    /// The extensions that must merge: `Required=yes` in a selection file (also one rejected as
    /// malformed: a required extension with a broken file must not pass silently).
    public static func requiredExtensions(in set: SelectionSet) -> Set<String> {
        Set(set.selections.filter(\.required).map(\.name) + set.rejected.filter(\.required).compactMap(\.name))
    }

    /// Plans and performs the downloads: what selection files and sysupdate transfers name and is
    /// missing locally (`update`: also newer versions). Each failure is one line naming the URL
    /// and the reason. A failed required download, or a problem with a required selection, fails
    /// the stage after the others were tried; an optional one is reported and skipped.
    public func fetch(update: Bool) throws -> FetchReport {
        let started = monotonicMilliseconds()
        let host = try Host.detect(root: environment.rootForDisplay)
        // Plan offline first: when nothing needs the network, nothing touches it (no listing,
        // and in the initrd, no network brought up and no time spent waiting for one).
        var offline = fetchOptions
        offline.offline = true
        let dry = try planFetches(root: environment.rootForDisplay, update: update, host: host,
                                  log: Log(level: .error), options: offline, selections: selections)
        guard update || dry.needsNetwork || !dry.problems.isEmpty || !dry.warnings.isEmpty else {
            var report = FetchReport(plan: dry)
            report.milliseconds = monotonicMilliseconds() - started
            return report
        }
        var options = fetchOptions
        if dry.needsNetwork && Coexistence.runningInInitrd && !fetchOptions.offline {
            do {
                try InitrdNetwork.bringUp(timeout: fetchOptions.networkTimeout, log: log)
            } catch {
                // No network: each download is tried once (it fails with its own message), not
                // retried with backoff for a network that already had its chance to come up.
                log.warning("\(error); trying each download once, without retries")
                options.retries = 0
            }
        }
        let plan = try planFetches(root: environment.rootForDisplay, update: update, host: host, log: log, options: options,
                                   selections: selections)
        for warning in plan.warnings { log.warning(warning) }
        for problem in plan.problems { log.warning(problem) }
        var report = FetchReport(plan: plan)
        if !plan.requests.isEmpty {
            let fetcher = Fetcher(log: log, options: options)
            for request in plan.requests {
                do {
                    let result = try fetcher.fetch(request)
                    log.info("fetched \(request.name) from \(request.url): \(result.bytes) bytes in \(String(format1: result.seconds)) s, sha256 \(result.sha256)")
                    report.results.append(result)
                } catch {
                    let message = "\(error)"
                    log.warning(message)
                    report.failures.append((request, message))
                }
            }
        }
        report.milliseconds = monotonicMilliseconds() - started
        let lost = report.failures.filter(\.request.required).map(\.request.name) + (plan.blocking.isEmpty ? [] : ["(selection)"])
        if !lost.isEmpty {
            let reasons = plan.blocking + report.failures.filter(\.request.required).map(\.message)
            throw EarlyextError(.requiredFailed, "required extension(s) could not be fetched: " + reasons.joined(separator: "; "))
        }
        return report
    }
}

extension String {
    /// A number with one decimal, without Foundation's String(format:).
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
