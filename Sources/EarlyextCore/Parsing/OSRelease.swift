/// A line of a configuration file that could not be used, and why.
///
/// Parsers in earlyext never fail on a bad line: they skip it and record one of these, so the
/// caller can report it and carry on with the rest of the file.
public struct ParseProblem: Equatable, Sendable, CustomStringConvertible {
    /// The 1-based line the problem starts on.
    public var line: Int
    public var message: String

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { "line \(line): \(message)" }
}

/// An os-release(5) or extension-release file: `KEY=VALUE` assignments, read the way systemd's
/// environment-file parser reads them.
///
/// - Blank lines, and lines whose first non-blank character is `#` or `;`, are comments.
/// - Whitespace around the key and after the `=` is ignored. A key must match
///   `[A-Za-z_][A-Za-z0-9_]*`.
/// - A value is unquoted, `'single-quoted'` (taken literally) or `"double-quoted"` (where `\"`,
///   `\\`, `\$` and `` \` `` stand for the character; any other backslash is kept). Quoted parts
///   may follow one another and may be followed by an unquoted part: `A="x"'y'z` is `xyz`.
///   Quoted parts may span lines.
/// - In an unquoted value a backslash takes the next character literally, quotes are ordinary
///   characters (`A=x"y"` is `x"y"`, as in systemd), and trailing whitespace is dropped.
/// - A backslash at the end of a line continues the value on the next line, outside single
///   quotes. Comments never continue.
/// - A later assignment to the same key replaces the earlier one. An empty assignment stores the
///   empty string, which systemd treats the same as an unset key.
///
/// Bad lines (no `=`, an invalid key, a quote still open at the end of the file) are skipped and
/// recorded in `problems`. For an unterminated quote, parsing resumes on the line after the one
/// the assignment started on, so one stray quote does not swallow the rest of the file (systemd
/// would instead take everything up to the end of the file as the value).
public struct OSRelease: Equatable, Sendable {
    public var fields: [String: String]
    public var problems: [ParseProblem]

    public init(fields: [String: String] = [:], problems: [ParseProblem] = []) {
        self.fields = fields
        self.problems = problems
    }

    /// The value of `key`, or nil when the file does not set it.
    public subscript(_ key: String) -> String? { fields[key] }

    /// Parses the text of an os-release(5) file. Never fails; see `problems`.
    public static func parse(_ text: String) -> OSRelease {
        var parser = EnvironmentFileParser(text)
        parser.parseAll()
        return OSRelease(fields: parser.fields, problems: parser.problems)
    }
}

// MARK: - Implementation

/// The state machine behind `OSRelease.parse(_:)`, working on UTF-8 bytes. Every character with a
/// meaning to it is ASCII, so multi-byte characters pass through untouched.
private struct EnvironmentFileParser {
    private enum State {
        case beforeKey, key, beforeValue, value, valueEscape
        case singleQuoted, doubleQuoted, doubleQuotedEscape, comment
    }

    private let bytes: [UInt8]
    private(set) var fields: [String: String] = [:]
    private(set) var problems: [ParseProblem] = []

    init(_ text: String) { bytes = Array(text.utf8) }

    mutating func parseAll() {
        var start = (offset: 0, line: 1)
        while let resume = parse(from: start.offset, line: start.line) { start = resume }
    }

    /// Parses from `offset` to the end of the text. Returns where to start again when an
    /// assignment's quote was still open at the end, or nil when done.
    private mutating func parse(from offset: Int, line firstLine: Int) -> (offset: Int, line: Int)? {
        var state = State.beforeKey
        var line = firstLine
        var key: [UInt8] = []
        var value: [UInt8] = []
        var valueKept = 0  // value[..<valueKept] survives trimming of trailing whitespace
        var assignment = (offset: offset, line: line)

        for index in offset..<bytes.count {
            let c = bytes[index]
            switch state {
            case .beforeKey:
                if c.isCommentMarker {
                    state = .comment
                } else if c == .equals {
                    assignment = (index, line)
                    key = []
                    value = []
                    valueKept = 0
                    state = .beforeValue
                } else if !c.isWhitespace {
                    assignment = (index, line)
                    key = [c]
                    state = .key
                }
            case .key:
                if c.isNewline {
                    missingEquals(after: key, line: assignment.line)
                    state = .beforeKey
                } else if c == .equals {
                    value = []
                    valueKept = 0
                    state = .beforeValue
                } else {
                    key.append(c)
                }
            case .beforeValue:
                if c.isNewline {
                    store(key, value[...], line: assignment.line)
                    state = .beforeKey
                } else if c == .singleQuote {
                    state = .singleQuoted
                } else if c == .doubleQuote {
                    state = .doubleQuoted
                } else if c == .backslash {
                    state = .valueEscape
                } else if !c.isWhitespace {
                    value.append(c)
                    valueKept = value.count
                    state = .value
                }
            case .value:
                if c.isNewline {
                    store(key, value[..<valueKept], line: assignment.line)
                    state = .beforeKey
                } else if c == .backslash {
                    state = .valueEscape
                } else {
                    value.append(c)
                    if !c.isWhitespace { valueKept = value.count }
                }
            case .valueEscape:
                // A backslash-newline joins the lines; any other character is taken as is.
                if !c.isNewline {
                    value.append(c)
                    valueKept = value.count
                }
                state = .value
            case .singleQuoted:
                if c == .singleQuote {
                    state = .beforeValue
                } else {
                    value.append(c)
                    valueKept = value.count
                }
            case .doubleQuoted:
                if c == .doubleQuote {
                    state = .beforeValue
                } else if c == .backslash {
                    state = .doubleQuotedEscape
                } else {
                    value.append(c)
                    valueKept = value.count
                }
            case .doubleQuotedEscape:
                if c.isShellSpecial {
                    value.append(c)
                } else if c != .newline {
                    value += [.backslash, c]
                }
                valueKept = value.count
                state = .doubleQuoted
            case .comment:
                if c.isNewline { state = .beforeKey }
            }
            if c == .newline { line += 1 }
        }

        switch state {
        case .beforeKey, .comment:
            return nil
        case .key:
            missingEquals(after: key, line: assignment.line)
            return nil
        case .beforeValue, .valueEscape:
            store(key, value[...], line: assignment.line)
            return nil
        case .value:
            store(key, value[..<valueKept], line: assignment.line)
            return nil
        case .singleQuoted, .doubleQuoted, .doubleQuotedEscape:
            let quote = state == .singleQuoted ? "single" : "double"
            problems.append(ParseProblem(
                line: assignment.line, message: "unterminated \(quote) quote in the value of '\(text(key))'"))
            guard let newline = bytes[assignment.offset...].firstIndex(of: .newline) else { return nil }
            return (newline + 1, assignment.line + 1)
        }
    }

    private mutating func missingEquals(after key: [UInt8], line: Int) {
        problems.append(ParseProblem(line: line, message: "missing '=' after '\(text(key.trimmingTrailingWhitespace()))'"))
    }

    private mutating func store(_ key: [UInt8], _ value: ArraySlice<UInt8>, line: Int) {
        let trimmedKey = key.trimmingTrailingWhitespace()
        guard !trimmedKey.isEmpty else {
            problems.append(ParseProblem(line: line, message: "missing key before '='"))
            return
        }
        guard trimmedKey.isEnvironmentName else {
            problems.append(ParseProblem(line: line, message: "invalid key '\(text(trimmedKey))'"))
            return
        }
        fields[text(trimmedKey)] = text(value)
    }

    private func text<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

extension Collection<UInt8> {
    /// Whether the bytes match `[A-Za-z_][A-Za-z0-9_]*`.
    fileprivate var isEnvironmentName: Bool {
        guard let first, first.isASCIILetter || first == .underscore else { return false }
        return allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == .underscore }
    }
}

// MARK: - Byte classes shared by the parsers

extension UInt8 {
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
    static let hash = UInt8(ascii: "#")
    static let semicolon = UInt8(ascii: ";")
    static let equals = UInt8(ascii: "=")
    static let backslash = UInt8(ascii: "\\")
    static let singleQuote = UInt8(ascii: "'")
    static let doubleQuote = UInt8(ascii: "\"")
    static let underscore = UInt8(ascii: "_")

    var isASCIIDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }

    var isASCIILetter: Bool {
        (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "z"))
            || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "Z"))
    }

    /// A line break as systemd's parsers see it: `\n` or `\r`.
    var isNewline: Bool { self == .newline || self == .carriageReturn }

    /// systemd's `WHITESPACE`: space, tab, `\n`, `\r`.
    var isWhitespace: Bool { self == UInt8(ascii: " ") || self == UInt8(ascii: "\t") || isNewline }

    /// Starts a comment line in environment and INI files.
    var isCommentMarker: Bool { self == .hash || self == .semicolon }

    /// Characters a backslash stands for inside double quotes: `"`, `\`, `` ` ``, `$`.
    fileprivate var isShellSpecial: Bool {
        self == .doubleQuote || self == .backslash || self == UInt8(ascii: "`") || self == UInt8(ascii: "$")
    }
}

extension BidirectionalCollection<UInt8> {
    /// The bytes without trailing `WHITESPACE`.
    func trimmingTrailingWhitespace() -> SubSequence {
        guard let last = lastIndex(where: { !$0.isWhitespace }) else { return self[startIndex..<startIndex] }
        return self[...last]
    }

    /// The bytes without leading or trailing `WHITESPACE`.
    func trimmingWhitespace() -> SubSequence {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
              let last = lastIndex(where: { !$0.isWhitespace })
        else { return self[startIndex..<startIndex] }
        return self[first...last]
    }
}
