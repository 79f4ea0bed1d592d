import Testing
@testable import EarlyextCore

private let host = Host(osRelease: OSRelease(fields: ["ID": "debian", "VERSION_ID": "12"]), scope: .system, architecture: "x86-64")

private func image(_ name: String, dir: String = "/etc/extensions") -> Candidate {
    Candidate(name: name, searchDir: dir, entryPath: "\(dir)/\(name).raw", resolvedPath: "/sysroot\(dir)/\(name).raw", kind: .raw)
}

private func found(_ fields: [String: String], _ hierarchies: [String] = ["/usr"]) -> Result<Inspection, EarlyextError> {
    .success(Inspection(release: .found(OSRelease(fields: fields), file: "/usr/lib/extension-release.d/x"), hierarchies: hierarchies))
}

/// One row: an inspection outcome and the verdict and reason expected for it.
struct PlanCase: Sendable, CustomTestStringConvertible {
    var label: String
    var inspection: Result<Inspection, EarlyextError>?
    var verdict: Verdict
    var reason: String
    var testDescription: String { label }
}

let planCases: [PlanCase] = [
    PlanCase(label: "ID=_any", inspection: found(["ID": "_any"]), verdict: .merge, reason: "merge: ID=_any"),
    PlanCase(label: "same OS version", inspection: found(["ID": "debian", "VERSION_ID": "12"]),
             verdict: .merge, reason: "merge: ID=debian VERSION_ID=12 matches host"),
    PlanCase(label: "other OS", inspection: found(["ID": "fedora", "VERSION_ID": "12"]),
             verdict: .skip, reason: "skip: ID=fedora does not match host ID=debian (nor ID_LIKE)"),
    PlanCase(label: "other version", inspection: found(["ID": "debian", "VERSION_ID": "11"]),
             verdict: .skip, reason: "skip: VERSION_ID=11 does not match host VERSION_ID=12"),
    PlanCase(label: "no content", inspection: found(["ID": "_any"], []),
             verdict: .skip, reason: "skip: has neither /usr nor /opt content"),
    PlanCase(label: "no release file",
             inspection: .success(Inspection(release: .missing("no extension-release file: x does not exist"), hierarchies: ["/usr"])),
             verdict: .skip, reason: "skip: no extension-release file: x does not exist"),
    PlanCase(label: "refused image",
             inspection: .success(Inspection(release: .refused("image contains /usr/lib/os-release; an extension must not carry an OS identity"), hierarchies: ["/usr"])),
             verdict: .skip, reason: "skip: image contains /usr/lib/os-release; an extension must not carry an OS identity"),
    PlanCase(label: "inspection failed", inspection: .failure(EarlyextError(.mount, "cannot mount /sysroot/etc/extensions/a.raw", errno: .invalid)),
             verdict: .skip, reason: "skip: cannot mount /sysroot/etc/extensions/a.raw: Invalid argument"),
    PlanCase(label: "not inspected", inspection: nil, verdict: .skip, reason: "skip: image was not inspected"),
    PlanCase(label: "incompatible beats missing content", inspection: found(["ID": "_any", "ARCHITECTURE": "arm64"], []),
             verdict: .skip, reason: "skip: ARCHITECTURE=arm64 does not match host architecture x86-64"),
]

@Suite struct PlanTests {
    @Test(arguments: planCases)
    func verdicts(_ row: PlanCase) throws {
        let discovery = DiscoveryResult(candidates: [image("a")])
        let inspections = row.inspection.map { ["a": $0] } ?? [:]
        let plan = makePlan(host: host, discovery: discovery, inspections: inspections)
        let entry = try #require(plan.entries.first)
        #expect(plan.entries.count == 1)
        #expect(entry.name == "a")
        #expect(entry.candidate == image("a"))
        #expect(entry.verdict == row.verdict)
        #expect(entry.reason == row.reason)
        #expect(plan.toMerge.count == (row.verdict == .merge ? 1 : 0))
    }

    @Test func releaseAndHierarchiesAreCarried() throws {
        let plan = makePlan(host: host, discovery: DiscoveryResult(candidates: [image("a"), image("b")]), inspections: [
            "a": found(["ID": "_any", "EXTENSION_RELOAD_MANAGER": "1"], ["/usr", "/opt"]),
            "b": found(["ID": "fedora"], ["/opt"]),
        ])
        #expect(plan.entries[0].release?["EXTENSION_RELOAD_MANAGER"] == "1")
        #expect(plan.entries[0].hierarchies == ["/usr", "/opt"])
        #expect(plan.entries[1].release?["ID"] == "fedora")   // kept for an incompatible image too
        #expect(plan.entries[1].hierarchies == ["/opt"])
    }

    @Test func maskedNamesAreSkipped() throws {
        let discovery = DiscoveryResult(
            candidates: [image("b")],
            masked: [Masked(name: "a", searchDir: "/etc/extensions", entryPath: "/etc/extensions/a")],
            shadowed: [image("b", dir: "/var/lib/extensions")],
            skipped: [Skipped(entryPath: "/etc/extensions/c.raw", reason: "x")])
        let plan = makePlan(host: host, discovery: discovery, inspections: ["b": found(["ID": "_any"])])
        #expect(plan.entries == [
            PlanEntry(name: "a", candidate: nil, verdict: .skip, reason: "skip: masked by /etc/extensions/a"),
            PlanEntry(name: "b", candidate: image("b"), verdict: .merge, reason: "merge: ID=_any", hierarchies: ["/usr"],
                      release: OSRelease(fields: ["ID": "_any"])),
        ])
    }

    @Test func layersAreBottomFirstAndPerHierarchy() throws {
        let names = ["d", "a", "c", "b", "e"]
        let discovery = DiscoveryResult(candidates: names.map { image($0) },
                                        masked: [Masked(name: "bb", searchDir: "/run/extensions", entryPath: "/run/extensions/bb.raw")])
        let plan = makePlan(host: host, discovery: discovery, inspections: [
            "a": found(["ID": "_any"], ["/usr"]),
            "b": found(["ID": "_any"], ["/usr", "/opt"]),
            "c": found(["ID": "fedora"], ["/usr"]),
            "d": found(["ID": "_any"], ["/opt"]),
            "e": found(["ID": "_any"], ["/usr"]),
        ])
        #expect(plan.entries.map(\.name) == ["a", "b", "bb", "c", "d", "e"])
        #expect(plan.toMerge.map(\.name) == ["a", "b", "d", "e"])
        #expect(plan.layers(for: "/usr").map(\.name) == ["a", "b", "e"])
        #expect(plan.layers(for: "/opt").map(\.name) == ["b", "d"])
        #expect(plan.layers(for: "/etc").isEmpty)
    }

    @Test func stableSortKeepsTiesInOrder() {
        let items = [(1, "x"), (0, "a"), (1, "y"), (0, "b"), (1, "z")]
        #expect(stableSorted(items) { $0.0 < $1.0 }.map(\.1) == ["a", "b", "x", "y", "z"])
    }
}
