import Testing
@testable import EarlyextCore

/// One command line and what it must parse to.
struct ArgvCase: Sendable, CustomTestStringConvertible {
    enum Outcome: Sendable, Equatable {
        case invocation(Invocation)
        case error(String)
    }

    var argv: [String]
    var outcome: Outcome

    init(_ argv: [String], _ invocation: Invocation) {
        self.argv = argv
        self.outcome = .invocation(invocation)
    }

    init(_ argv: [String], error: String) {
        self.argv = argv
        self.outcome = .error(error)
    }

    var testDescription: String { argv.isEmpty ? "(no arguments)" : argv.joined(separator: " ") }
}

/// Options built in place, for the table below.
private func options(_ change: (inout Options) -> Void = { _ in }) -> Options {
    var options = Options()
    change(&options)
    return options
}

private let argvCases: [ArgvCase] = [
    // Commands.
    .init(["plan"], .run(.plan, options(), operands: [])),
    .init(["list"], .run(.list, options(), operands: [])),
    .init(["fetch"], .run(.fetch, options(), operands: [])),
    .init(["merge"], .run(.merge, options(), operands: [])),
    .init(["refresh"], .run(.refresh, options(), operands: [])),
    .init(["unmerge"], .run(.unmerge, options(), operands: [])),
    .init(["status"], .run(.status, options(), operands: [])),
    .init(["verify", "a.raw", "b.raw"], .run(.verify, options(), operands: ["a.raw", "b.raw"])),
    // Options, before and after the command, both spellings.
    .init(["--root", "/sysroot", "merge"], .run(.merge, options { $0.root = "/sysroot" }, operands: [])),
    .init(["merge", "--root=/sysroot"], .run(.merge, options { $0.root = "/sysroot" }, operands: [])),
    .init(["--state-dir=/run/x", "status", "--json"],
          .run(.status, options { $0.stateDir = "/run/x"; $0.json = true }, operands: [])),
    .init(["plan", "--json", "--offline"], .run(.plan, options { $0.json = true; $0.offline = true }, operands: [])),
    .init(["merge", "--update", "--offline"],
          .run(.merge, options { $0.update = true; $0.offline = true }, operands: [])),
    .init(["fetch", "--update"], .run(.fetch, options { $0.update = true }, operands: [])),
    .init(["refresh", "--no-reload"], .run(.refresh, options { $0.noReload = true }, operands: [])),
    .init(["--no-reload", "merge"], .run(.merge, options { $0.noReload = true }, operands: [])),
    .init(["unmerge", "--no-reload"], .run(.unmerge, options { $0.noReload = true }, operands: [])),
    .init(["--log-level", "debug", "refresh"], .run(.refresh, options { $0.logLevel = .debug }, operands: [])),
    .init(["unmerge", "--log-level=error"], .run(.unmerge, options { $0.logLevel = .error }, operands: [])),
    .init(["--root=/a", "--root=/b", "list"], .run(.list, options { $0.root = "/b" }, operands: [])),
    .init(["verify", "--", "-odd.raw"], .run(.verify, options(), operands: ["-odd.raw"])),
    .init(["verify", "-"], .run(.verify, options(), operands: ["-"])),
    .init(["--", "merge"], .run(.merge, options(), operands: [])),
    // Help and version.
    .init([], error: "no command given"),
    .init(["--help"], .help(nil)),
    .init(["-h"], .help(nil)),
    .init(["merge", "--help"], .help(.merge)),
    .init(["--help", "verify"], .help(.verify)),
    .init(["-h", "status", "--bogus"], .help(.status)),
    .init(["--version"], .version),
    .init(["plan", "--version"], .version),
    .init(["--help", "nonsense"], error: "unknown command 'nonsense'"),
    // Usage errors.
    .init(["frobnicate"], error: "unknown command 'frobnicate'"),
    .init(["--frob", "merge"], error: "unrecognized option '--frob'"),
    .init(["merge", "-x"], error: "unrecognized option '-x'"),
    .init(["merge", "--root"], error: "option '--root' requires an argument"),
    .init(["merge", "--state-dir"], error: "option '--state-dir' requires an argument"),
    .init(["merge", "--root="], error: "option '--root' requires a non-empty argument"),
    .init(["merge", "--json=yes"], error: "option '--json' does not take an argument"),
    .init(["merge", "--json"], error: "option '--json' is only valid with plan, list and status"),
    .init(["verify", "x.raw", "--json"], error: "option '--json' is only valid with plan, list and status"),
    .init(["status", "--update"], error: "option '--update' is only valid with fetch, merge and refresh"),
    .init(["fetch", "--offline"], error: "option '--offline' cannot be used with fetch"),
    .init(["plan", "--no-reload"], error: "option '--no-reload' is only valid with merge, refresh and unmerge"),
    .init(["merge", "--no-reload=yes"], error: "option '--no-reload' does not take an argument"),
    .init(["verify"], error: "verify needs at least one IMAGE"),
    .init(["merge", "extra"], error: "unexpected argument 'extra'"),
    .init(["status", "--", "--json"], error: "unexpected argument '--json'"),
    .init(["--log-level", "loud", "merge"],
          error: "invalid log level 'loud' for '--log-level' (expected error, warning, info or debug)"),
    .init(["--offline"], error: "no command given"),
    .init(["bogus", "--frob"], error: "unknown command 'bogus'"),
]

@Suite("Arguments")
struct ArgumentsTests {
    @Test(arguments: argvCases)
    func parse(_ testCase: ArgvCase) {
        let outcome: ArgvCase.Outcome
        do {
            outcome = .invocation(try parseArguments(testCase.argv))
        } catch {
            outcome = .error(error.message)
        }
        #expect(outcome == testCase.outcome)
    }

    @Test func logLevelsAreOrdered() {
        #expect(LogLevel.error < .warning)
        #expect(LogLevel.info < .debug)
        #expect(LogLevel.allCases.sorted() == LogLevel.allCases)
    }

    @Test func overviewListsEveryCommandAndOption() {
        let text = helpText(for: nil)
        #expect(text.hasPrefix("earlyext [OPTIONS...] COMMAND ...\n"))
        for command in Command.allCases {
            #expect(text.contains("\n  \(command.rawValue) "))
        }
        for option in ["-h --help", "--version", "--root=DIR", "--state-dir=DIR", "--json", "--offline", "--update",
                       "--no-reload", "--log-level=LEVEL"] {
            #expect(text.contains(option))
        }
        #expect(text.contains("  verify IMAGE...  Check images"))
    }

    @Test(arguments: Command.allCases)
    func commandHelpListsOnlyItsOptions(_ command: Command) {
        let text = helpText(for: command)
        #expect(text.hasPrefix("usage: earlyext [OPTIONS] \(command.rawValue)"))
        #expect(text.contains("--json") == [.plan, .list, .status].contains(command))
        #expect(text.contains("--update") == [.fetch, .merge, .refresh].contains(command))
        #expect(text.contains("--offline") == (command != .fetch))
        #expect(text.contains("--no-reload") == [.merge, .refresh, .unmerge].contains(command))
        #expect(text.contains("--root=DIR"))
        #expect(!text.contains("--version"))
    }

    @Test func helpColumnsAreAligned() {
        let lines = helpText(for: nil).split(separator: "\n")
        let optionLines = lines.filter { $0.hasPrefix("  -h") || $0.hasPrefix("     --") }
        #expect(optionLines.count == 9)
        // Where the description starts: after the synopsis (past its short-option column) and the gap.
        let columns = Set(optionLines.map { line -> Int in
            let body = line.dropFirst(5)
            let gap = body.firstRange(of: "  ")!.lowerBound
            let description = body[gap...].firstIndex { $0 != " " }!
            return line.distance(from: line.startIndex, to: description)
        })
        #expect(columns.count == 1, "\(optionLines)")
        #expect(versionText.hasPrefix("earlyext "))
    }
}
