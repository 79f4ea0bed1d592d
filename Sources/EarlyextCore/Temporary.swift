// TEMPORARY: moves into Discovery.swift when discovery lands.
public enum EntryKind: String, Sendable { case raw, directory, block }
public struct Candidate: Equatable, Sendable {
    public var name: String
    public var searchDir: String
    public var entryPath: String
    public var resolvedPath: String
    public var kind: EntryKind
    public init(name: String, searchDir: String, entryPath: String, resolvedPath: String, kind: EntryKind) {
        self.name = name; self.searchDir = searchDir; self.entryPath = entryPath
        self.resolvedPath = resolvedPath; self.kind = kind
    }
}
public enum LogLevel: String, CaseIterable, Comparable, Sendable {
    case error, warning, info, debug
    public static func < (a: LogLevel, b: LogLevel) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
