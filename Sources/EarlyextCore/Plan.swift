/// What opening an image revealed.
public struct Inspection: Equatable, Sendable {
    public var release: ReleaseLookup
    /// The hierarchies the image has content for (`hierarchiesPresent`).
    public var hierarchies: [String]

    public init(release: ReleaseLookup, hierarchies: [String]) {
        self.release = release
        self.hierarchies = hierarchies
    }
}

public enum Verdict: String, Sendable {
    case merge, fetch, skip
}

/// One line of the plan.
public struct PlanEntry: Equatable, Sendable {
    public var name: String
    /// nil for a masked name.
    public var candidate: Candidate?
    public var verdict: Verdict
    /// One line: "merge: ID=_any", "skip: masked by /etc/extensions/foo", …
    public var reason: String
    public var hierarchies: [String]
    /// The extension-release fields, when they were found (also for an incompatible image).
    public var release: OSRelease?

    public init(name: String, candidate: Candidate?, verdict: Verdict, reason: String,
                hierarchies: [String] = [], release: OSRelease? = nil) {
        self.name = name
        self.candidate = candidate
        self.verdict = verdict
        self.reason = reason
        self.hierarchies = hierarchies
        self.release = release
    }
}

public struct Plan: Equatable, Sendable {
    /// All candidates and masked names, sorted by `compareVersions(name)` ascending: bottom layer first.
    public var entries: [PlanEntry]

    public init(entries: [PlanEntry]) { self.entries = entries }

    /// The entries to merge, bottom layer first.
    public var toMerge: [PlanEntry] { entries.filter { $0.verdict == .merge } }

    /// The entries to merge that have content in `hierarchy` ("/usr", "/opt"), bottom layer first.
    public func layers(for hierarchy: String) -> [PlanEntry] {
        toMerge.filter { $0.hierarchies.contains(hierarchy) }
    }
}

/// Decides, without any I/O, what to do with each discovered image. `inspections` is keyed by
/// candidate name; a candidate without one, or whose inspection failed, is skipped.
/// Checks, in order: masked; inspection; release file (missing/refused); host match; content in
/// /usr or /opt.
public func makePlan(host: Host, discovery: DiscoveryResult, inspections: [String: Result<Inspection, EarlyextError>]) -> Plan {
    var entries = discovery.masked.map { mask in
        PlanEntry(name: mask.name, candidate: nil, verdict: .skip, reason: "skip: masked by \(mask.entryPath)")
    }
    for candidate in discovery.candidates {
        func skip(_ reason: String, _ inspection: Inspection? = nil, _ release: OSRelease? = nil) -> PlanEntry {
            PlanEntry(name: candidate.name, candidate: candidate, verdict: .skip, reason: "skip: " + reason,
                      hierarchies: inspection?.hierarchies ?? [], release: release)
        }
        switch inspections[candidate.name] {
        case nil:
            entries.append(skip("image was not inspected"))
        case .failure(let error)?:
            entries.append(skip(error.description))
        case .success(let inspection)?:
            switch inspection.release {
            case .missing(let reason), .refused(let reason):
                entries.append(skip(reason, inspection))
            case .found(let release, _):
                let (match, basis) = explainMatch(release: release, host: host)
                if case .incompatible(let reason) = match {
                    entries.append(skip(reason, inspection, release))
                } else if inspection.hierarchies.isEmpty {
                    entries.append(skip("has neither /usr nor /opt content", inspection, release))
                } else {
                    entries.append(PlanEntry(name: candidate.name, candidate: candidate, verdict: .merge,
                                             reason: "merge: " + basis, hierarchies: inspection.hierarchies,
                                             release: release))
                }
            }
        }
    }
    return Plan(entries: stableSorted(entries) { compareVersions($0.name, $1.name) < 0 })
}

/// Sorting that keeps the original order of equal elements (Array.sort does not promise it).
func stableSorted<T>(_ items: [T], by less: (T, T) -> Bool) -> [T] {
    items.enumerated().sorted { a, b in
        less(a.element, b.element) || (!less(b.element, a.element) && a.offset < b.offset)
    }.map(\.element)
}
