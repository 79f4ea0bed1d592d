/// A file in systemd's unit-file syntax: `[Section]` headers followed by `Key=Value` lines.
///
/// earlyext reads selection files (`[Extension] Name=…`), sysupdate `.transfer` files and
/// `earlyext.conf` with it. The syntax, as systemd defines it:
///
/// - Blank lines, and lines whose first non-blank character is `#` or `;`, are comments. There
///   are no comments at the end of a line: `A=b # c` sets `A` to `b # c`.
/// - Whitespace around keys and values is dropped. Values are kept as written: quotes and
///   backslashes mean nothing at this level.
/// - A line ending in a backslash continues on the next line: the backslash becomes a space and
///   the next line is appended as it is. Comment lines inside a continuation are skipped.
/// - A key may be assigned several times; all assignments are kept in order. An empty assignment
///   (`Key=`) is kept as the empty string, which callers use to reset a list.
///
/// Bad lines never stop the parse. These are recorded in `problems` and skipped: assignments
/// before the first section header, lines without `=`, an empty key, and malformed section
/// headers (a line starting with `[` that does not end with `]`, an empty name, or a name with
/// brackets in it). Assignments under a malformed header are skipped without further problems.
public struct INIFile: Sendable {
    /// One `Key=Value` assignment.
    public struct Entry: Equatable, Sendable {
        public var section: String
        public var key: String
        public var value: String
        /// The 1-based line the assignment starts on.
        public var line: Int

        public init(section: String, key: String, value: String, line: Int) {
            self.section = section
            self.key = key
            self.value = value
            self.line = line
        }
    }

    /// Every assignment, in file order.
    public var entries: [Entry]
    /// Every line that was skipped, in file order.
    public var problems: [ParseProblem]
    /// Section names in the order they first appear, each once.
    public var sections: [String]

    public init(entries: [Entry] = [], problems: [ParseProblem] = [], sections: [String] = []) {
        self.entries = entries
        self.problems = problems
        self.sections = sections
    }

    /// All values assigned to `key` in `section`, in file order.
    public func values(_ section: String, _ key: String) -> [String] {
        entries.filter { $0.section == section && $0.key == key }.map(\.value)
    }

    /// The last value assigned to `key` in `section`: later assignments override earlier ones.
    public func value(_ section: String, _ key: String) -> String? {
        entries.last { $0.section == section && $0.key == key }?.value
    }

    /// Parses the text of a unit-style file. Never fails; see `problems`.
    public static func parse(_ text: String) -> INIFile {
        var parser = INIParser()
        var bytes = Array(text.utf8)
        if bytes.starts(with: byteOrderMark) { bytes.removeFirst(byteOrderMark.count) }

        // A logical line being continued, and the physical line it started on.
        var pending: (text: [UInt8], line: Int)?
        var lineNumber = 0
        for physical in bytes.split(separator: .newline, omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = physical
            if line.last == .carriageReturn { line.removeLast() }

            if let first = line.first(where: { !$0.isWhitespace }), first.isCommentMarker { continue }

            var logical = (text: (pending?.text ?? []) + line, line: pending?.line ?? lineNumber)
            if logical.text.endsWithContinuation {
                logical.text[logical.text.count - 1] = UInt8(ascii: " ")
                pending = logical
                continue
            }
            pending = nil
            parser.parseLine(logical.text, line: logical.line)
        }
        if let pending { parser.parseLine(pending.text, line: pending.line) }
        return parser.file
    }
}

// MARK: - Implementation

private let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

/// Turns logical lines (continuations already joined) into entries.
private struct INIParser {
    var file = INIFile()

    private enum Section {
        case none
        case named(String)
        case malformed
    }
    private var section = Section.none

    mutating func parseLine(_ raw: [UInt8], line: Int) {
        let text = raw.trimmingWhitespace()
        guard let first = text.first else { return }

        if first == UInt8(ascii: "[") {
            parseHeader(text, line: line)
            return
        }

        let name: String
        switch section {
        case .named(let current): name = current
        case .malformed: return
        case .none:
            problem(line, "assignment outside of a section: '\(string(text))'")
            return
        }
        guard let equals = text.firstIndex(of: .equals) else {
            problem(line, "missing '=' in '\(string(text))'")
            return
        }
        let key = text[..<equals].trimmingWhitespace()
        guard !key.isEmpty else {
            problem(line, "missing key before '=' in '\(string(text))'")
            return
        }
        let value = text[(equals + 1)...].trimmingWhitespace()
        file.entries.append(INIFile.Entry(section: name, key: string(key), value: string(value), line: line))
    }

    private mutating func parseHeader(_ text: ArraySlice<UInt8>, line: Int) {
        let name = text.dropFirst().dropLast()
        let isBracket = { (byte: UInt8) in byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]") }
        guard text.count > 2, text.last == UInt8(ascii: "]"), !name.contains(where: isBracket) else {
            problem(line, "invalid section header '\(string(text))'")
            section = .malformed
            return
        }
        let sectionName = string(name)
        section = .named(sectionName)
        if !file.sections.contains(sectionName) { file.sections.append(sectionName) }
    }

    private mutating func problem(_ line: Int, _ message: String) {
        file.problems.append(ParseProblem(line: line, message: message))
    }

    private func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

extension Array<UInt8> {
    /// Whether the line ends in a backslash that is not itself escaped by one before it.
    fileprivate var endsWithContinuation: Bool {
        var escaped = false
        for byte in self {
            escaped = escaped ? false : byte == .backslash
        }
        return escaped
    }
}
