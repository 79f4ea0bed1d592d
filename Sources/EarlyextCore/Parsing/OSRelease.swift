// STUB, replaced by the full os-release(5) parser (owner: parsing helper).
public struct ParseProblem: Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public init(line: Int, message: String) { self.line = line; self.message = message }
    public var description: String { "line \(line): \(message)" }
}

/// An os-release(5) / extension-release file: KEY=value assignments.
public struct OSRelease: Equatable, Sendable {
    public var fields: [String: String]
    public var problems: [ParseProblem]
    public init(fields: [String: String] = [:], problems: [ParseProblem] = []) {
        self.fields = fields
        self.problems = problems
    }
    public subscript(_ key: String) -> String? { fields[key] }

    public static func parse(_ text: String) -> OSRelease {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            var value = String(line[line.index(after: eq)...])
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            fields[String(line[..<eq])] = value
        }
        return OSRelease(fields: fields)
    }
}
