/// What the service manager should do after a merge, a refresh or an unmerge, as the extensions'
/// release files ask:
/// - `EXTENSION_RELOAD_MANAGER=1`: `systemctl daemon-reload`, so that the manager sees the unit
///   files the extensions add or take away.
/// - `EXTENSION_RESTART_UNITS="a.service b.service"` and `EXTENSION_RELOAD_OR_RESTART_UNITS=…`
///   (systemd PR #42368): restart (or reload-or-restart) those units; a unit whose file is gone
///   (its extension went away) is stopped instead. Either implies the reload.
///
/// Which extensions count:
/// - The reload: every extension of the previous and of the new merge that sets
///   EXTENSION_RELOAD_MANAGER (as systemd-sysext does), plus every extension whose units are acted on.
/// - The units: only the extensions that were added, removed or changed (another version, another
///   image). Refreshing one extension does not restart the services of an unrelated, untouched one.
///   `unmerge` removes every extension, so all their units count.
///
/// In the initrd none of this is needed: the real system's manager has not started yet and reads
/// the merged units when it does (extensions still need `.wants`/`.upholds` links to be started
/// at boot). With another ROOT, the running manager is not that root's. `--no-reload` turns
/// all of it off (restarting without the reload would act on stale unit definitions).
///
/// `plan` is pure; `perform` runs systemctl through a closure, so that tests can stand in for it.
public enum ManagerActions {
    public static let reloadKey = "EXTENSION_RELOAD_MANAGER"
    public static let restartKey = "EXTENSION_RESTART_UNITS"
    public static let reloadOrRestartKey = "EXTENSION_RELOAD_OR_RESTART_UNITS"
    /// The release keys the state record must keep so that the next run can plan.
    public static let releaseKeys = [reloadKey, restartKey, reloadOrRestartKey]

    /// What identifies the image an extension was merged from. Two identities differ when a field
    /// known on both sides differs: a record written by an older earlyext, or an image checked
    /// without a digest, still compares by what it has.
    public struct Identity: Equatable, Sendable {
        /// SYSEXT_VERSION_ID, else VERSION_ID of its release file.
        public var version: String?
        /// The entry in the search dir, relative to the root ("/etc/extensions/foo.raw").
        public var source: String?
        /// The image file's device, inode, size and mtime (none for a directory extension).
        public var file: String?
        /// The dm-verity root hash, or the SHA-256 the image was checked against.
        public var digest: String?

        public init(version: String? = nil, source: String? = nil, file: String? = nil, digest: String? = nil) {
            self.version = version
            self.source = source
            self.file = file
            self.digest = digest
        }

        public func differs(from other: Identity) -> Bool {
            func differ(_ a: String?, _ b: String?) -> Bool {
                guard let a, let b else { return false }
                return a != b
            }
            return differ(version, other.version) || differ(source, other.source) || differ(file, other.file)
                || differ(digest, other.digest)
        }
    }

    /// One merged extension, as far as the service manager is concerned.
    public struct Extension: Equatable, Sendable {
        public var name: String
        /// Its release file's values (only the keys of `releaseKeys` matter here).
        public var release: [String: String]
        public var identity: Identity

        public init(name: String, release: [String: String], identity: Identity = Identity()) {
            self.name = name
            self.release = release
            self.identity = identity
        }
    }

    public enum UnitAction: String, Equatable, Sendable {
        case restart
        case reloadOrRestart = "reload-or-restart"

        /// The release key that asks for it.
        public var key: String { self == .restart ? restartKey : reloadOrRestartKey }
    }

    /// One unit to act on, and the extensions that asked.
    public struct UnitStep: Equatable, Sendable {
        public var unit: String
        public var action: UnitAction
        public var askedBy: [String]

        public init(_ unit: String, _ action: UnitAction, askedBy: [String]) {
            self.unit = unit
            self.action = action
            self.askedBy = askedBy
        }
    }

    /// What one touched extension asked for under one key (valid unit names only): for messages.
    public struct Request: Equatable, Sendable {
        public var name: String
        public var action: UnitAction
        public var units: [String]

        public init(_ name: String, _ action: UnitAction, _ units: [String]) {
            self.name = name
            self.action = action
            self.units = units
        }
    }

    public enum Situation: Equatable, Sendable {
        /// ROOT is / and this is the booted system: act.
        case runtime
        /// The real system's manager has not started yet.
        case initrd
        /// ROOT is not /: the running manager is not that root's.
        case otherRoot
        /// `--no-reload`.
        case disabled
    }

    public struct Plan: Equatable, Sendable {
        public var situation: Situation
        /// The extensions that set EXTENSION_RELOAD_MANAGER.
        public var reloadAskedBy: [String] = []
        /// The extensions whose units are acted on (each implies the reload).
        public var requests: [Request] = []
        /// In order: the touched extensions in merge order (the removed ones last), each one's
        /// EXTENSION_RESTART_UNITS before its EXTENSION_RELOAD_OR_RESTART_UNITS, and within a key
        /// as listed. A unit appears once, where first named; restart wins over reload-or-restart.
        public var units: [UnitStep] = []
        /// One line per unit name that is not valid: the extension, the key, the value.
        public var problems: [String] = []

        public init(situation: Situation, reloadAskedBy: [String] = [], requests: [Request] = [],
                    units: [UnitStep] = [], problems: [String] = []) {
            self.situation = situation
            self.reloadAskedBy = reloadAskedBy
            self.requests = requests
            self.units = units
            self.problems = problems
        }

        /// Does anything ask for the reload (explicitly, or through its units)?
        public var reloads: Bool { !reloadAskedBy.isEmpty || !requests.isEmpty }
        public var isEmpty: Bool { !reloads }

        /// One clause for messages: "EXTENSION_RELOAD_MANAGER set by a b, EXTENSION_RESTART_UNITS
        /// of c (c.service)".
        public var summary: String {
            var parts: [String] = []
            if !reloadAskedBy.isEmpty { parts.append("\(reloadKey) set by \(reloadAskedBy.joined(separator: " "))") }
            for request in requests {
                parts.append("\(request.action.key) of \(request.name) (\(request.units.joined(separator: " ")))")
            }
            return parts.joined(separator: ", ")
        }
    }

    /// Pure. `new` is the merge just made (empty for unmerge), `previous` the one it replaced
    /// (from the previous state record; empty if there was none), each in merge order.
    public static func plan(new: [Extension], previous: [Extension], inInitrd: Bool, rootIsSlash: Bool,
                            noReload: Bool) -> Plan {
        let situation: Situation = inInitrd ? .initrd : !rootIsSlash ? .otherRoot : noReload ? .disabled : .runtime
        var plan = Plan(situation: situation)

        var seen = Set<String>()
        for e in new + previous where asksForReload(e.release[reloadKey]) && !seen.contains(e.name) {
            seen.insert(e.name)
            plan.reloadAskedBy.append(e.name)
        }

        // The touched extensions, with the release files whose units count: a changed one's new
        // and old lists (its old units may be gone now: they get stopped).
        var touched: [(name: String, releases: [[String: String]])] = []
        let before = Dictionary(previous.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let now = Set(new.map(\.name))
        for e in new {
            guard let old = before[e.name] else { touched.append((e.name, [e.release])); continue }
            if e.identity.differs(from: old.identity) { touched.append((e.name, [e.release, old.release])) }
        }
        for e in previous where !now.contains(e.name) && !touched.contains(where: { $0.name == e.name }) {
            touched.append((e.name, [e.release]))
        }

        var problems = Set<String>()
        var index: [String: Int] = [:]
        for (name, releases) in touched {
            for action in [UnitAction.restart, .reloadOrRestart] {
                var valid: [String] = []
                for release in releases {
                    guard let value = release[action.key] else { continue }
                    for unit in parseUnitList(value) {
                        if let reason = invalidUnitName(unit) {
                            let line = "\(name): \(action.key)=\"\(value)\": '\(unit)' \(reason); skipped"
                            if problems.insert(line).inserted { plan.problems.append(line) }
                            continue
                        }
                        if !valid.contains(unit) { valid.append(unit) }
                    }
                }
                guard !valid.isEmpty else { continue }
                plan.requests.append(Request(name, action, valid))
                for unit in valid {
                    if let i = index[unit] {
                        if action == .restart { plan.units[i].action = .restart }
                        if !plan.units[i].askedBy.contains(name) { plan.units[i].askedBy.append(name) }
                    } else {
                        index[unit] = plan.units.count
                        plan.units.append(UnitStep(unit, action, askedBy: [name]))
                    }
                }
            }
        }
        return plan
    }

    /// systemd parses EXTENSION_RELOAD_MANAGER as a boolean.
    static func asksForReload(_ value: String?) -> Bool {
        value.flatMap(parseBoolean) ?? false
    }

    /// The unit names of an EXTENSION_*_UNITS value: separated by whitespace (the release
    /// file's quotes are already gone).
    public static func parseUnitList(_ value: String) -> [String] {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init)
    }

    /// The unit types systemd knows.
    static let unitTypes: Set<Substring> = ["service", "socket", "target", "device", "mount", "automount", "swap",
                                            "timer", "path", "slice", "scope"]

    /// nil for a valid unit name (systemd's rules: `PREFIX[@INSTANCE].TYPE`, at most 255
    /// characters of `A-Za-z0-9:-_.\` and one `@`), else why not. A template without an instance
    /// (`foo@.service`) cannot be restarted.
    public static func invalidUnitName(_ name: String) -> String? {
        guard name.utf8.count <= 255 else { return "is not a unit name (longer than 255 characters)" }
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex, unitTypes.contains(name[name.index(after: dot)...])
        else { return "is not a unit name (NAME.TYPE, such as foo.service)" }
        let allowed = name.utf8.allSatisfy { c in
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                 UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "@"):
                true
            default:
                false
            }
        }
        guard allowed else { return "is not a unit name (a character systemd does not allow)" }
        let ats = name.utf8.filter { $0 == UInt8(ascii: "@") }.count
        guard ats == 0 || (ats == 1 && name.first != "@") else { return "is not a unit name (misplaced '@')" }
        if name[name.index(before: dot)] == "@" { return "is a template: it cannot be restarted without an instance" }
        return nil
    }

    // MARK: performing

    /// Runs one systemctl command line (arguments after "systemctl"); nil if it could not run.
    public typealias Systemctl = ([String]) -> (succeeded: Bool, output: String)?

    /// The real systemctl, through `Subprocess`; nil when it is not installed.
    static func systemctl() -> Systemctl? {
        guard let path = Subprocess.locate("systemctl") else { return nil }
        return { arguments in
            guard let outcome = try? Subprocess(arguments: [path] + arguments).run() else { return nil }
            return (outcome.succeeded, outcome.output)
        }
    }

    /// Carries out the plan: in the booted system with ROOT = /, one `daemon-reload`, then per unit
    /// `stop` if the manager no longer finds it, else its action. `--no-block`: a unit ordered
    /// after the running refresh (say, After=earlyext-refresh.service) must not wait on it while
    /// earlyext waits on the unit. Elsewhere, one line says why nothing is done.
    public static func perform(_ plan: Plan, log: Log, systemctl: Systemctl?) {
        for problem in plan.problems { log.warning(problem) }
        guard !plan.isEmpty else { return }
        switch plan.situation {
        case .initrd:
            log.info("\(plan.summary): not needed in the initrd, the system's manager starts with the merged units")
            return
        case .otherRoot:
            log.info("\(plan.summary): not acted on, --root is not /: the running service manager is not that root's")
            return
        case .disabled:
            log.info("\(plan.summary): not reloading the service manager nor restarting units (--no-reload)")
            return
        case .runtime:
            break
        }
        guard let systemctl else {
            log.warning("\(plan.summary): systemctl is not found, the service manager is not told")
            return
        }
        let reloadReason = (plan.reloadAskedBy + plan.requests.map(\.name)).reduce(into: [String]()) { names, name in
            if !names.contains(name) { names.append(name) }
        }
        let reloaded = systemctl(["daemon-reload"])
        if reloaded?.succeeded == true {
            log.info("reloaded the service manager (asked by \(reloadReason.joined(separator: " ")))")
        } else {
            // The units still get their action: a restart runs the new binaries, if under the old definition.
            log.warning("systemctl daemon-reload failed (asked by \(reloadReason.joined(separator: " "))): \(lastLine(reloaded?.output))")
        }
        for step in plan.units {
            let state = systemctl(["show", "--property=LoadState", "--value", "--", step.unit])
            let gone = state.map { $0.succeeded && lastLine($0.output) == "not-found" } ?? false
            let verb = gone ? "stop" : step.action.rawValue
            let why = gone ? "its unit file is gone" : "\(step.action.key) of \(step.askedBy.joined(separator: " "))"
            let outcome = systemctl(["--no-block", verb, "--", step.unit])
            if outcome?.succeeded == true {
                log.info("\(verb) of \(step.unit) queued (\(why))")
            } else {
                log.warning("systemctl \(verb) \(step.unit) failed (\(why)): \(lastLine(outcome?.output))")
            }
        }
    }

    static func lastLine(_ output: String?) -> String {
        guard let output else { return "could not run systemctl" }
        return output.split(separator: "\n").last.map(String.init) ?? ""
    }
}
