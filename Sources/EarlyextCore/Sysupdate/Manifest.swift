/// A `SHA256SUMS` file, as a sysupdate `url-file` source publishes it next to its images.
///
/// Each line is `<64 hex digits> <space> <' ' or '*'><file name>` (the `*` is sha256sum's binary
/// marker). File names may name a subdirectory (`sub/file`) but must be relative and normalized
/// (no `.` or `..` components, no `//`), without control characters and without the backslash
/// escaping sha256sum uses for odd names.
///
/// Where systemd refuses the whole manifest for one bad line, earlyext reports the line and skips
/// it, so one broken entry does not hide the others. Blank lines are skipped silently.
///
/// `BEST-BEFORE-YYYY-MM-DD` entries are systemd's freshness markers: they never match a pattern,
/// and `expiredMarker(today:)` says if one of them has passed.
public struct Manifest: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        /// Lowercase hex.
        public var sha256: String
        public var fileName: String
        public var line: Int

        public init(sha256: String, fileName: String, line: Int) {
            self.sha256 = sha256
            self.fileName = fileName
            self.line = line
        }
    }

    public var entries: [Entry]
    public var problems: [ParseProblem]
    /// The dates of `BEST-BEFORE-…` markers, as written (`2026-12-31`).
    public var bestBefore: [String]

    public init(entries: [Entry] = [], problems: [ParseProblem] = [], bestBefore: [String] = []) {
        self.entries = entries
        self.problems = problems
        self.bestBefore = bestBefore
    }

    /// Parses the text of a SHA256SUMS file. Never fails; bad lines are in `problems`.
    public static func parse(_ text: String) -> Manifest {
        var manifest = Manifest()
        var number = 0
        for raw in text.utf8.split(separator: .newline, omittingEmptySubsequences: false) {
            number += 1
            var line = Array(raw)
            if line.last == .carriageReturn { line.removeLast() }
            if line.allSatisfy(\.isWhitespace) { continue }
            switch parseLine(line) {
            case .success(let (hash, name)):
                if name.hasPrefix("BEST-BEFORE-") {
                    manifest.bestBefore.append(String(name.dropFirst("BEST-BEFORE-".count)))
                } else {
                    manifest.entries.append(Entry(sha256: hash, fileName: name, line: number))
                }
            case .failure(let problem):
                manifest.problems.append(ParseProblem(line: number, message: problem.message))
            }
        }
        return manifest
    }

    /// The first `BEST-BEFORE-` date earlier than `today` (both `YYYY-MM-DD`), or nil. Dates that
    /// are not `YYYY-MM-DD` are ignored, as systemd ignores markers it cannot parse.
    public func expiredMarker(today: String) -> String? {
        bestBefore.first { date in
            let bytes = Array(date.utf8)
            let isDate = bytes.count == 10 && bytes[4] == UInt8(ascii: "-") && bytes[7] == UInt8(ascii: "-")
                && bytes.enumerated().allSatisfy { $0.offset == 4 || $0.offset == 7 || $0.element.isASCIIDigit }
            return isDate && date < String(today.prefix(10))
        }
    }

    private struct LineProblem: Error { var message: String }

    private static func parseLine(_ line: [UInt8]) -> Result<(String, String), LineProblem> {
        if line.first == .backslash {
            return .failure(LineProblem(message: "escaped file names are not supported"))
        }
        guard line.count >= 67 else { return .failure(LineProblem(message: "too short for '<sha256> <name>'")) }
        let hash = line[0..<64]
        guard hash.allSatisfy(\.isHexDigit) else {
            return .failure(LineProblem(message: "the digest is not 64 hex digits"))
        }
        guard line[64] == UInt8(ascii: " ") else {
            return .failure(LineProblem(message: "missing space after the digest"))
        }
        guard line[65] == UInt8(ascii: " ") || line[65] == UInt8(ascii: "*") else {
            return .failure(LineProblem(message: "missing ' ' or '*' marker before the file name"))
        }
        let nameBytes = line[66...]
        guard !nameBytes.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
            return .failure(LineProblem(message: "the file name contains control characters"))
        }
        let name = String(decoding: nameBytes, as: UTF8.self)
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.hasPrefix("/"), !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            return .failure(LineProblem(message: "'\(name)' is not a normalized relative file name"))
        }
        return .success((String(decoding: hash, as: UTF8.self).lowercased(), name))
    }
}
