/// The command line: `earlyext [OPTIONS] COMMAND [ARGS]`, options before or after the command.
///
/// `parseArguments(_:)` turns argv into an `Invocation` or a `UsageError` (exit code 2). It knows
/// only syntax and which option goes with which command; what the commands do lives elsewhere.

/// The verbs earlyext understands.
public enum Command: String, CaseIterable, Sendable {
    case plan, list, fetch, merge, refresh, unmerge, status, verify

    /// The name of the operands the command takes, or nil if it takes none. `verify` needs at
    /// least one IMAGE.
    public var operandName: String? {
        self == .verify ? "IMAGE" : nil
    }
}

/// How much earlyext says on stderr, from least to most.
public enum LogLevel: String, CaseIterable, Comparable, Sendable {
    case error, warning, info, debug

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// The options given on the command line. Defaults that depend on the machine (`--root`) are
/// left nil here and resolved by the command that runs.
public struct Options: Equatable, Sendable {
    public var root: String?
    public var stateDir: String?
    public var json = false
    public var offline = false
    public var update = false
    public var noReload = false
    public var logLevel: LogLevel = .info

    public init() {}
}

/// What a command line asks for.
public enum Invocation: Equatable, Sendable {
    /// `--help`, for one command or in general.
    case help(Command?)
    /// `--version`.
    case version
    /// A command to run.
    case run(Command, Options, operands: [String])
}

/// A command line that cannot be run. `message` is one line, without the program name.
public struct UsageError: Error, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// Parses the arguments after argv[0].
///
/// - `--help` (or `-h`) anywhere wins over everything but an unknown command: `earlyext merge
///   --help` is `.help(.merge)`. Then `--version` wins.
/// - Options take their value as `--root DIR` or `--root=DIR`; the last of a repeated option
///   counts. `--` ends the options. Long options cannot be abbreviated.
/// - The first error in argv order is thrown; after that, the checks that need the whole
///   command line: an option used with a command it does not apply to, operands.
public func parseArguments(_ arguments: [String]) throws(UsageError) -> Invocation {
    var scan = ArgumentScan()
    scan.read(arguments)

    if scan.helpRequested {
        guard let name = scan.words.first else { return .help(nil) }
        guard let command = Command(rawValue: name) else { throw .unknownCommand(name) }
        return .help(command)
    }
    if scan.versionRequested { return .version }
    if let error = scan.firstError { throw error }

    guard let name = scan.words.first else { throw UsageError("no command given") }
    guard let command = Command(rawValue: name) else { throw .unknownCommand(name) }

    for option in scan.used where !option.commands.contains(command) {
        throw UsageError("option '--\(option.long)' \(option.applicability)")
    }

    let operands = Array(scan.words.dropFirst())
    if let operandName = command.operandName {
        if operands.isEmpty { throw UsageError("\(command.rawValue) needs at least one \(operandName)") }
    } else if let extra = operands.first {
        throw UsageError("unexpected argument '\(extra)'")
    }
    return .run(command, scan.options, operands: operands)
}

// MARK: - Options

/// Every option earlyext knows, with its spelling and the commands it is valid with. Help.swift
/// adds the descriptions.
enum OptionKind: CaseIterable, Sendable {
    case help, version, root, stateDir, json, offline, update, noReload, logLevel

    /// The long name, without the leading `--`.
    var long: String {
        switch self {
        case .help: "help"
        case .version: "version"
        case .root: "root"
        case .stateDir: "state-dir"
        case .json: "json"
        case .offline: "offline"
        case .update: "update"
        case .noReload: "no-reload"
        case .logLevel: "log-level"
        }
    }

    /// The one-letter name, if any.
    var short: Character? { self == .help ? "h" : nil }

    /// What the value is called in help, or nil for a flag.
    var valueName: String? {
        switch self {
        case .root, .stateDir: "DIR"
        case .logLevel: "LEVEL"
        case .help, .version, .json, .offline, .update, .noReload: nil
        }
    }

    /// The commands the option may be used with.
    var commands: [Command] {
        switch self {
        case .json: [.plan, .list, .status]
        case .update: [.fetch, .merge, .refresh]
        case .noReload: [.merge, .refresh, .unmerge]
        // Never touching the network is what fetch cannot do; accepting it would do nothing.
        case .offline: Command.allCases.filter { $0 != .fetch }
        case .help, .version, .root, .stateDir, .logLevel: Command.allCases
        }
    }

    /// Finishes "option '--x' …" for a command the option does not apply to.
    fileprivate var applicability: String {
        let excluded = Command.allCases.filter { !commands.contains($0) }
        if excluded.count < commands.count {
            return "cannot be used with \(listing(excluded.map(\.rawValue)))"
        }
        return "is only valid with \(listing(commands.map(\.rawValue)))"
    }

    /// The option spelled `spelling` (`--root`, `-h`), if there is one.
    fileprivate init?(spelling: Substring) {
        let match = OptionKind.allCases.first { kind in
            spelling == "--" + kind.long || kind.short.map { spelling == "-\($0)" } == true
        }
        guard let match else { return nil }
        self = match
    }
}

/// "a", "a and b", "a, b and c".
func listing(_ items: [String], conjunction: String = "and") -> String {
    guard let last = items.last else { return "" }
    guard items.count > 1 else { return last }
    return items.dropLast().joined(separator: ", ") + " \(conjunction) " + last
}

extension UsageError {
    fileprivate static func unknownCommand(_ name: String) -> UsageError {
        UsageError("unknown command '\(name)'")
    }
}

/// One left-to-right pass over argv. Errors are kept, not thrown, so that a `--help` later on
/// the line still wins.
private struct ArgumentScan {
    var options = Options()
    /// Non-option arguments: the command, then its operands.
    var words: [String] = []
    /// Options given, in order, for the per-command checks.
    var used: [OptionKind] = []
    var helpRequested = false
    var versionRequested = false
    private(set) var firstError: UsageError?

    mutating func read(_ arguments: [String]) {
        var remaining = arguments[...]
        var optionsEnded = false
        while let argument = remaining.popFirst() {
            if optionsEnded || argument == "-" || !argument.hasPrefix("-") {
                if words.isEmpty, Command(rawValue: argument) == nil { fail(.unknownCommand(argument)) }
                words.append(argument)
                continue
            }
            if argument == "--" {
                optionsEnded = true
                continue
            }

            // "--name=value" carries its value inline; short options never do.
            var spelling = argument[...]
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                spelling = argument[..<equals]
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            guard let option = OptionKind(spelling: spelling) else {
                fail(UsageError("unrecognized option '\(spelling)'"))
                continue
            }

            var value: String?
            if option.valueName != nil {
                value = inlineValue ?? remaining.popFirst()
                if value == nil {
                    fail(UsageError("option '\(spelling)' requires an argument"))
                    continue
                }
            } else if inlineValue != nil {
                fail(UsageError("option '\(spelling)' does not take an argument"))
                continue
            }
            apply(option, value: value ?? "")
        }
    }

    private mutating func apply(_ option: OptionKind, value: String) {
        used.append(option)
        switch option {
        case .help: helpRequested = true
        case .version: versionRequested = true
        case .json: options.json = true
        case .offline: options.offline = true
        case .update: options.update = true
        case .noReload: options.noReload = true
        case .root: options.root = directory(value, for: option)
        case .stateDir: options.stateDir = directory(value, for: option)
        case .logLevel:
            guard let level = LogLevel(rawValue: value) else {
                let allowed = listing(LogLevel.allCases.map(\.rawValue), conjunction: "or")
                fail(UsageError("invalid log level '\(value)' for '--log-level' (expected \(allowed))"))
                return
            }
            options.logLevel = level
        }
    }

    private mutating func directory(_ value: String, for option: OptionKind) -> String? {
        if value.isEmpty { fail(UsageError("option '--\(option.long)' requires a non-empty argument")) }
        return value.isEmpty ? nil : value
    }

    private mutating func fail(_ error: UsageError) {
        if firstError == nil { firstError = error }
    }
}
