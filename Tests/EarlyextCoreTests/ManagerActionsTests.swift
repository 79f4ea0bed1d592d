import Testing
@testable import EarlyextCore

typealias MA = ManagerActions

/// An extension as the planner sees it: its release keys and its identity.
private func ext(_ name: String, version: String? = "1", file: String? = nil, reload: String? = nil,
                 restart: String? = nil, reloadOrRestart: String? = nil) -> MA.Extension {
    var release: [String: String] = [:]
    if let reload { release[MA.reloadKey] = reload }
    if let restart { release[MA.restartKey] = restart }
    if let reloadOrRestart { release[MA.reloadOrRestartKey] = reloadOrRestart }
    return MA.Extension(name: name, release: release,
                        identity: MA.Identity(version: version, source: "/etc/extensions/\(name).raw", file: file))
}

/// One planner case: the merges before and after, where earlyext runs, and the plan.
struct PlannerCase: Sendable, CustomTestStringConvertible {
    var label: String
    fileprivate var new: [MA.Extension]
    fileprivate var previous: [MA.Extension]
    var inInitrd = false
    var rootIsSlash = true
    var noReload = false
    var expected: MA.Plan
    var testDescription: String { label }
}

private let restartA = MA.Request("a", .restart, ["a.service"])
private let stepA = MA.UnitStep("a.service", .restart, askedBy: ["a"])

private let plannerCases: [PlannerCase] = [
    PlannerCase(label: "nothing asks", new: [ext("a"), ext("b")], previous: [ext("a")],
                expected: MA.Plan(situation: .runtime)),
    PlannerCase(label: "added", new: [ext("a", restart: "a.service")], previous: [],
                expected: MA.Plan(situation: .runtime, requests: [restartA], units: [stepA])),
    PlannerCase(label: "removed (and unmerge)", new: [], previous: [ext("a", restart: "a.service")],
                expected: MA.Plan(situation: .runtime, requests: [restartA], units: [stepA])),
    PlannerCase(label: "changed version", new: [ext("a", version: "2", restart: "a.service")],
                previous: [ext("a", version: "1", restart: "a.service")],
                expected: MA.Plan(situation: .runtime, requests: [restartA], units: [stepA])),
    PlannerCase(label: "same version, another image file", new: [ext("a", file: "1:2 10 5.0", restart: "a.service")],
                previous: [ext("a", file: "1:3 10 6.0", restart: "a.service")],
                expected: MA.Plan(situation: .runtime, requests: [restartA], units: [stepA])),
    PlannerCase(label: "unchanged: its units stay", new: [ext("a", file: "1:2 10 5.0", restart: "a.service")],
                previous: [ext("a", file: "1:2 10 5.0", restart: "a.service")],
                expected: MA.Plan(situation: .runtime)),
    PlannerCase(label: "a field only one side knows does not count", new: [ext("a", file: "1:2 10 5.0", restart: "a.service")],
                previous: [ext("a", version: nil, restart: "a.service")],
                expected: MA.Plan(situation: .runtime)),
    PlannerCase(label: "unchanged with EXTENSION_RELOAD_MANAGER: reload, no restart",
                new: [ext("a", reload: "1", restart: "a.service")], previous: [ext("a", reload: "1", restart: "a.service")],
                expected: MA.Plan(situation: .runtime, reloadAskedBy: ["a"])),
    PlannerCase(label: "reload asked by the old merge only", new: [], previous: [ext("r", reload: "yes")],
                expected: MA.Plan(situation: .runtime, reloadAskedBy: ["r"])),
    PlannerCase(label: "only the changed one of two", new: [ext("a", version: "2", restart: "a.service"), ext("b", restart: "b.service")],
                previous: [ext("a", restart: "a.service"), ext("b", restart: "b.service")],
                expected: MA.Plan(situation: .runtime, requests: [restartA], units: [stepA])),
    PlannerCase(label: "changed: new and old lists, the old one's vanished units too",
                new: [ext("a", version: "2", restart: "x.service")], previous: [ext("a", restart: "y.service x.service")],
                expected: MA.Plan(situation: .runtime, requests: [MA.Request("a", .restart, ["x.service", "y.service"])],
                                  units: [MA.UnitStep("x.service", .restart, askedBy: ["a"]),
                                          MA.UnitStep("y.service", .restart, askedBy: ["a"])])),
    PlannerCase(label: "both keys: restart wins", new: [ext("a", restart: "x.service", reloadOrRestart: "x.service y.socket")],
                previous: [],
                expected: MA.Plan(situation: .runtime,
                                  requests: [MA.Request("a", .restart, ["x.service"]),
                                             MA.Request("a", .reloadOrRestart, ["x.service", "y.socket"])],
                                  units: [MA.UnitStep("x.service", .restart, askedBy: ["a"]),
                                          MA.UnitStep("y.socket", .reloadOrRestart, askedBy: ["a"])])),
    PlannerCase(label: "dedup across extensions, in merge order, removed last",
                new: [ext("a", reloadOrRestart: "s.service t.service s.service"), ext("b", restart: "s.service")],
                previous: [ext("c", restart: "t.service c.service")],
                expected: MA.Plan(situation: .runtime,
                                  requests: [MA.Request("a", .reloadOrRestart, ["s.service", "t.service"]),
                                             MA.Request("b", .restart, ["s.service"]),
                                             MA.Request("c", .restart, ["t.service", "c.service"])],
                                  units: [MA.UnitStep("s.service", .restart, askedBy: ["a", "b"]),
                                          MA.UnitStep("t.service", .restart, askedBy: ["a", "c"]),
                                          MA.UnitStep("c.service", .restart, askedBy: ["c"])])),
    PlannerCase(label: "bad names: one warning each, skipped",
                new: [ext("a", restart: "ok.service bad/x.service noext t@.service")], previous: [],
                expected: MA.Plan(situation: .runtime, requests: [MA.Request("a", .restart, ["ok.service"])],
                                  units: [MA.UnitStep("ok.service", .restart, askedBy: ["a"])], problems: [
                                      #"a: EXTENSION_RESTART_UNITS="ok.service bad/x.service noext t@.service": 'bad/x.service' is not a unit name (a character systemd does not allow); skipped"#,
                                      #"a: EXTENSION_RESTART_UNITS="ok.service bad/x.service noext t@.service": 'noext' is not a unit name (NAME.TYPE, such as foo.service); skipped"#,
                                      #"a: EXTENSION_RESTART_UNITS="ok.service bad/x.service noext t@.service": 't@.service' is a template: it cannot be restarted without an instance; skipped"#,
                                  ])),
    PlannerCase(label: "only bad names: no request, no reload", new: [ext("a", restart: "nope")], previous: [],
                expected: MA.Plan(situation: .runtime, problems: [
                    #"a: EXTENSION_RESTART_UNITS="nope": 'nope' is not a unit name (NAME.TYPE, such as foo.service); skipped"#])),
    PlannerCase(label: "initrd", new: [ext("a", reload: "1", restart: "a.service")], previous: [], inInitrd: true,
                expected: MA.Plan(situation: .initrd, reloadAskedBy: ["a"], requests: [restartA], units: [stepA])),
    PlannerCase(label: "initrd wins over --no-reload", new: [ext("a", restart: "a.service")], previous: [],
                inInitrd: true, noReload: true,
                expected: MA.Plan(situation: .initrd, requests: [restartA], units: [stepA])),
    PlannerCase(label: "another root", new: [ext("a", restart: "a.service")], previous: [], rootIsSlash: false,
                expected: MA.Plan(situation: .otherRoot, requests: [restartA], units: [stepA])),
    PlannerCase(label: "--no-reload", new: [ext("a", reload: "1", restart: "a.service")], previous: [], noReload: true,
                expected: MA.Plan(situation: .disabled, reloadAskedBy: ["a"], requests: [restartA], units: [stepA])),
]

struct ManagerActionsPlanTests {
    @Test(arguments: plannerCases)
    func plan(_ c: PlannerCase) {
        let plan = MA.plan(new: c.new, previous: c.previous, inInitrd: c.inInitrd, rootIsSlash: c.rootIsSlash,
                           noReload: c.noReload)
        #expect(plan == c.expected)
    }

    @Test func unitsImplyTheReload() {
        let plan = MA.plan(new: [ext("a", restart: "a.service")], previous: [], inInitrd: false, rootIsSlash: true, noReload: false)
        #expect(plan.reloads)
        #expect(plan.reloadAskedBy.isEmpty)
        #expect(MA.Plan(situation: .runtime).isEmpty)
    }

    @Test func summaryNamesExtensionsAndUnits() {
        let plan = MA.plan(new: [ext("r", reload: "1"), ext("a", restart: "a.service b.service", reloadOrRestart: "c.socket")],
                           previous: [], inInitrd: true, rootIsSlash: false, noReload: false)
        #expect(plan.summary == "EXTENSION_RELOAD_MANAGER set by r, EXTENSION_RESTART_UNITS of a (a.service b.service), "
            + "EXTENSION_RELOAD_OR_RESTART_UNITS of a (c.socket)")
    }

    @Test(arguments: [("1", true), ("yes", true), ("TRUE", true), ("on", true), ("0", false), ("no", false),
                      ("", false), ("2", false), ("maybe", false)])
    func reloadValueIsABoolean(value: String, expected: Bool) {
        #expect(MA.asksForReload(value) == expected)
    }

    @Test(arguments: [
        ("a.service", ["a.service"]),
        ("a.service b.service", ["a.service", "b.service"]),
        ("  a.service\tb.socket\n c.timer  ", ["a.service", "b.socket", "c.timer"]),
        ("", []),
        ("   ", []),
    ])
    func unitListIsSplitOnWhitespace(value: String, expected: [String]) {
        #expect(MA.parseUnitList(value) == expected)
    }

    @Test(arguments: ["a.service", "docker.socket", "foo@bar.service", "-.mount", "sys-kernel-debug.mount",
                      "a:b_c\\x2d.timer", "x.target", "user-1000.slice", "a.b.c.path", "swap.swap"])
    func validUnitNames(name: String) {
        #expect(MA.invalidUnitName(name) == nil)
    }

    @Test(arguments: [
        ("a", "is not a unit name (NAME.TYPE, such as foo.service)"),
        (".service", "is not a unit name (NAME.TYPE, such as foo.service)"),
        ("a.serv", "is not a unit name (NAME.TYPE, such as foo.service)"),
        ("a.service.", "is not a unit name (NAME.TYPE, such as foo.service)"),
        ("a/b.service", "is not a unit name (a character systemd does not allow)"),
        ("../a.service", "is not a unit name (a character systemd does not allow)"),
        ("a*.service", "is not a unit name (a character systemd does not allow)"),
        ("ä.service", "is not a unit name (a character systemd does not allow)"),
        ("@a.service", "is not a unit name (misplaced '@')"),
        ("a@b@c.service", "is not a unit name (misplaced '@')"),
        ("a@.service", "is a template: it cannot be restarted without an instance"),
        (String(repeating: "x", count: 248) + ".service", "is not a unit name (longer than 255 characters)"),
    ])
    func invalidUnitNames(name: String, reason: String) {
        #expect(MA.invalidUnitName(name) == reason)
    }

    @Test func longestValidName() {
        #expect(MA.invalidUnitName(String(repeating: "x", count: 247) + ".service") == nil)
    }
}

/// `perform` against a stand-in for systemctl that records each call.
struct ManagerActionsPerformTests {
    final class FakeSystemctl: @unchecked Sendable {
        var calls: [[String]] = []
        var notFound: Set<String> = []
        var failing: Set<String> = []
        var run: MA.Systemctl {
            { arguments in
                self.calls.append(arguments)
                if arguments.first == "show", let unit = arguments.last {
                    return (true, self.notFound.contains(unit) ? "not-found\n" : "loaded\n")
                }
                if let unit = arguments.last, self.failing.contains(unit) {
                    return (false, "Failed to restart \(unit): Unit \(unit) has a bad setting.\nSee the journal.\n")
                }
                return (true, "")
            }
        }
    }

    @Test func runtimeReloadsOnceThenActsPerUnit() {
        let fake = FakeSystemctl()
        fake.notFound = ["gone.service"]
        let plan = MA.plan(new: [ext("a", restart: "a.service", reloadOrRestart: "b.socket")],
                           previous: [ext("old", restart: "gone.service")], inInitrd: false, rootIsSlash: true, noReload: false)
        let log = Log(level: .error)
        MA.perform(plan, log: log, systemctl: fake.run)
        #expect(fake.calls == [
            ["daemon-reload"],
            ["show", "--property=LoadState", "--value", "--", "a.service"],
            ["--no-block", "restart", "--", "a.service"],
            ["show", "--property=LoadState", "--value", "--", "b.socket"],
            ["--no-block", "reload-or-restart", "--", "b.socket"],
            ["show", "--property=LoadState", "--value", "--", "gone.service"],
            ["--no-block", "stop", "--", "gone.service"],
        ])
        #expect(log.warnings.isEmpty)
    }

    @Test func reloadOnlyWhenNoUnits() {
        let fake = FakeSystemctl()
        let plan = MA.plan(new: [ext("r", reload: "1")], previous: [], inInitrd: false, rootIsSlash: true, noReload: false)
        MA.perform(plan, log: Log(level: .error), systemctl: fake.run)
        #expect(fake.calls == [["daemon-reload"]])
    }

    @Test func aFailureIsOneWarningWithSystemctlsLastLine() {
        let fake = FakeSystemctl()
        fake.failing = ["bad.service"]
        let plan = MA.plan(new: [ext("a", restart: "bad.service ok.service")], previous: [], inInitrd: false,
                           rootIsSlash: true, noReload: false)
        let log = Log(level: .error)
        MA.perform(plan, log: log, systemctl: fake.run)
        #expect(log.warnings == ["systemctl restart bad.service failed (EXTENSION_RESTART_UNITS of a): See the journal."])
        #expect(fake.calls.last == ["--no-block", "restart", "--", "ok.service"], "the other units still get theirs")
    }

    @Test(arguments: [(true, true, false), (false, false, false), (false, true, true)])
    func nothingRunsOutsideTheBootedSystem(inInitrd: Bool, rootIsSlash: Bool, noReload: Bool) {
        let fake = FakeSystemctl()
        let plan = MA.plan(new: [ext("a", reload: "1", restart: "a.service")], previous: [], inInitrd: inInitrd,
                           rootIsSlash: rootIsSlash, noReload: noReload)
        let log = Log(level: .error)
        MA.perform(plan, log: log, systemctl: fake.run)
        #expect(fake.calls.isEmpty)
        #expect(log.warnings.isEmpty)
    }

    @Test func badNamesWarnEvenInTheInitrd() {
        let plan = MA.plan(new: [ext("a", restart: "x")], previous: [], inInitrd: true, rootIsSlash: false, noReload: false)
        let log = Log(level: .error)
        MA.perform(plan, log: log, systemctl: nil)
        #expect(log.warnings.count == 1)
    }

    @Test func noSystemctlIsOneWarning() {
        let plan = MA.plan(new: [ext("a", restart: "a.service")], previous: [], inInitrd: false, rootIsSlash: true, noReload: false)
        let log = Log(level: .error)
        MA.perform(plan, log: log, systemctl: nil)
        #expect(log.warnings == ["EXTENSION_RESTART_UNITS of a (a.service): systemctl is not found, the service manager is not told"])
    }
}
