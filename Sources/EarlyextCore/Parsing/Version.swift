/// Version comparison as systemd's `strverscmp_improved()` does it, which is also the order the
/// UAPI Version Format Specification defines.
///
/// Both strings are walked from the left, one segment at a time. At each step:
/// 1. Characters that are neither ASCII letters, ASCII digits nor one of `~ - ^ .` are skipped,
///    though they still end a segment: `1_2` is the segments `1` and `2` with no separator
///    between them, which sorts above `1.2`.
/// 2. `~` sorts below everything, even the end of the string: `1~rc1 < 1`, `~ < ""`.
/// 3. If either string has ended, the longer one is newer.
/// 4. `-` sorts below anything but `~` and the end, then `^`, then `.`.
/// 5. A numeric segment sorts above an alphabetic (or empty) one. Two numeric segments compare as
///    numbers, leading zeros ignored. Two alphabetic segments compare bytewise (`B < a`), and a
///    longer one wins over its own prefix.
///
/// Non-ASCII characters never take part: `11α` equals `11β`.
///
/// - Returns: -1 if `a` is older than `b`, 0 if they are equivalent, 1 if `a` is newer.
public func compareVersions(_ a: String, _ b: String) -> Int {
    var left = VersionScanner(a)
    var right = VersionScanner(b)
    while true {
        left.skipIgnored()
        right.skipIgnored()

        // A pre-release marker sorts below everything, the end of the string included.
        if let order = left.consumeShared(right: &right, marker: .tilde) { return order }

        if left.atEnd || right.atEnd {
            return compare(left.atEnd ? 0 : 1, right.atEnd ? 0 : 1)
        }

        // Separators, weakest first: the string that has one where the other has not is older.
        for marker in [UInt8.minus, .caret, .dot] {
            if let order = left.consumeShared(right: &right, marker: marker) { return order }
        }

        if left.current.isASCIIDigit || right.current.isASCIIDigit {
            let l = left.takeRun(where: \.isASCIIDigit)
            let r = right.takeRun(where: \.isASCIIDigit)
            // A number, however small, is newer than no number at all.
            let presence = compare(l.isEmpty ? 0 : 1, r.isEmpty ? 0 : 1)
            if presence != 0 { return presence }
            let order = compareNumerals(l.drop(while: { $0 == .zero }), r.drop(while: { $0 == .zero }))
            if order != 0 { return order }
        } else {
            let l = left.takeRun(where: \.isASCIILetter)
            let r = right.takeRun(where: \.isASCIILetter)
            let order = compareBytes(l, r)
            if order != 0 { return order }
        }
    }
}

/// A version string wrapped so that it sorts with `compareVersions(_:_:)`.
///
/// Equality is version equivalence, not string equality: `Version("1_") == Version("1")`.
public struct Version: Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var string: String

    public init(_ string: String) { self.string = string }
    public init(stringLiteral value: String) { self.string = value }

    public var description: String { string }

    public static func < (lhs: Version, rhs: Version) -> Bool {
        compareVersions(lhs.string, rhs.string) < 0
    }

    public static func == (lhs: Version, rhs: Version) -> Bool {
        compareVersions(lhs.string, rhs.string) == 0
    }
}

// MARK: - Implementation

/// A cursor over the UTF-8 bytes of a version string.
private struct VersionScanner {
    private let bytes: [UInt8]
    private var position = 0

    init(_ string: String) { bytes = Array(string.utf8) }

    var atEnd: Bool { position == bytes.count }

    /// The byte under the cursor, or 0 at the end.
    var current: UInt8 { atEnd ? 0 : bytes[position] }

    mutating func skipIgnored() {
        while !atEnd, !current.isVersionCharacter { position += 1 }
    }

    /// If either string is at `marker`, decides the order when only one of them is; when both
    /// are, steps over it in both and returns nil so the comparison goes on.
    mutating func consumeShared(right: inout VersionScanner, marker: UInt8) -> Int? {
        let here = current == marker
        let there = right.current == marker
        guard here || there else { return nil }
        if here != there { return here ? -1 : 1 }
        position += 1
        right.position += 1
        return nil
    }

    /// Takes the longest run of bytes matching `predicate` at the cursor (possibly empty).
    mutating func takeRun(where predicate: (UInt8) -> Bool) -> ArraySlice<UInt8> {
        let start = position
        while !atEnd, predicate(current) { position += 1 }
        return bytes[start..<position]
    }
}

private func compare(_ a: Int, _ b: Int) -> Int {
    a < b ? -1 : (a > b ? 1 : 0)
}

/// Compares two digit runs without leading zeros as numbers, whatever their length.
private func compareNumerals(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Int {
    let byLength = compare(a.count, b.count)
    return byLength != 0 ? byLength : compareBytes(a, b)
}

/// Bytewise comparison; a proper prefix sorts first.
private func compareBytes(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Int {
    for (x, y) in zip(a, b) where x != y {
        return x < y ? -1 : 1
    }
    return compare(a.count, b.count)
}

extension UInt8 {
    fileprivate static let tilde = UInt8(ascii: "~")
    fileprivate static let minus = UInt8(ascii: "-")
    fileprivate static let caret = UInt8(ascii: "^")
    fileprivate static let dot = UInt8(ascii: ".")
    fileprivate static let zero = UInt8(ascii: "0")

    fileprivate var isVersionCharacter: Bool {
        isASCIIDigit || isASCIILetter || self == .tilde || self == .minus || self == .caret || self == .dot
    }
}
