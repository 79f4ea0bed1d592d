/// A sysupdate.d `MatchPattern=`: a file name with `@` fields, matched the way systemd's
/// `pattern_match()` does (src/sysupdate/sysupdate-pattern.c). Specifiers (`%a`, …) are expanded
/// before the pattern is parsed (see `expandSpecifiers`).
///
/// - Literal text must match exactly. `@@` is a literal `@`.
/// - A field takes everything up to the *first* occurrence of the literal that follows it (or to
///   the end of the name), and the name must then continue with that literal. There is no
///   backtracking: `a-@v.raw` does not match `a-1.raw.raw`, as in systemd.
/// - Two fields must be separated by literal text, each field may appear once, and `@v` must
///   appear.
/// - The characters `$ * ? [ ] ! \ |` and control characters are reserved, as in systemd.
///
/// Fields, as sysupdate.d(5) lists them: `@v` version, `@u` partition UUID, `@f` partition
/// flags, `@t` mtime, `@m` mode, `@s` size, `@d` tries done, `@l` tries left, `@a` no-auto,
/// `@r` read-only, `@g` growfs, `@h` SHA-256. earlyext captures only `@v`. The others are
/// accepted in a *source* pattern as wildcards that must hold a well-formed value of their kind
/// (so the same names match as in systemd), and refused in a *target* pattern, because a target
/// file name is made from the pattern and earlyext fills in only the version.
/// The `**/` prefix of newer systemd is refused.
public struct MatchPattern: Equatable, Sendable, CustomStringConvertible {
    public enum Field: Character, Sendable, CaseIterable {
        case version = "v", partitionUUID = "u", partitionFlags = "f", modificationTime = "t", mode = "m"
        case size = "s", triesDone = "d", triesLeft = "l", noAuto = "a", readOnly = "r", growFileSystem = "g"
        case sha256 = "h"
    }

    enum Element: Equatable, Sendable {
        case literal([UInt8])
        case field(Field)
    }

    /// The pattern as written (after specifier expansion).
    public let text: String
    let elements: [Element]

    public var description: String { text }

    /// The fields the pattern uses, in order.
    public var fields: [Field] {
        elements.compactMap { if case .field(let f) = $0 { return f } else { return nil } }
    }

    /// Parses and validates `text`. Throws a one-line reason.
    public init(_ text: String) throws(PatternError) {
        self.text = text
        if text.hasPrefix("**/") {
            throw PatternError(message: "'\(text)': the '**/' prefix is not supported")
        }
        var elements: [Element] = []
        var seen: Set<Character> = []
        var at = false
        for byte in text.utf8 {
            if at {
                at = false
                if byte != UInt8(ascii: "@") {
                    let marker = Character(Unicode.Scalar(byte))
                    guard let field = Field(rawValue: marker) else {
                        throw PatternError(message: "'\(text)': unknown field @\(marker)")
                    }
                    guard seen.insert(marker).inserted else {
                        throw PatternError(message: "'\(text)': field @\(marker) appears twice")
                    }
                    if case .field? = elements.last {
                        throw PatternError(message: "'\(text)': fields must be separated by literal text")
                    }
                    elements.append(.field(field))
                    continue
                }
                // "@@": a literal "@", handled below.
            } else if byte == UInt8(ascii: "@") {
                at = true
                continue
            }
            guard byte >= 0x20, byte < 0x7f, !Self.reserved.contains(byte) else {
                throw PatternError(message: "'\(text)': invalid character 0x\(String(byte, radix: 16)) (reserved)")
            }
            if case .literal(let bytes)? = elements.last {
                elements[elements.count - 1] = .literal(bytes + [byte])
            } else {
                elements.append(.literal([byte]))
            }
        }
        if at { throw PatternError(message: "'\(text)': trailing '@'") }
        guard seen.contains("v") else { throw PatternError(message: "'\(text)': no @v version field") }
        self.elements = elements
    }

    private static let reserved: Set<UInt8> = Set("$*?[]!\\|".utf8)

    /// The version `name` carries if it matches the pattern, else nil.
    public func match(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        var position = 0
        var version: String?
        for (index, element) in elements.enumerated() {
            switch element {
            case .literal(let literal):
                guard bytes[position...].starts(with: literal) else { return nil }
                position += literal.count
            case .field(let field):
                let end: Int
                if index + 1 < elements.count, case .literal(let next) = elements[index + 1] {
                    guard let found = firstOccurrence(of: next, in: bytes, from: position) else { return nil }
                    end = found
                } else {
                    end = bytes.count
                }
                let value = String(decoding: bytes[position..<end], as: UTF8.self)
                guard Self.isValid(value, for: field) else { return nil }
                if field == .version { version = value }
                position = end
            }
        }
        return position == bytes.count ? version : nil
    }

    /// The file name for `version`: the pattern with `@v` replaced. Throws if the pattern has
    /// other fields (earlyext cannot fill them in) or the version is not valid.
    public func format(version: String) throws(PatternError) -> String {
        guard Self.isValidVersion(version) else {
            throw PatternError(message: "'\(version)' is not a valid version")
        }
        var bytes: [UInt8] = []
        for element in elements {
            switch element {
            case .literal(let literal): bytes += literal
            case .field(.version): bytes += Array(version.utf8)
            case .field(let other):
                throw PatternError(message: "'\(text)': field @\(other.rawValue) cannot be filled in (only @v is supported in a target pattern)")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Field values, as systemd validates them

    /// systemd's `version_is_valid()`: non-empty, at most 255 bytes, no `/`, not `.` or `..`, and
    /// only `[A-Za-z0-9.,_+-]`.
    public static func isValidVersion(_ value: String) -> Bool {
        guard !value.isEmpty, value.utf8.count <= 255, value != ".", value != ".." else { return false }
        return value.utf8.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || Set(".,_+-".utf8).contains($0) }
    }

    static func isValid(_ value: String, for field: Field) -> Bool {
        let bytes = Array(value.utf8)
        switch field {
        case .version:
            return isValidVersion(value)
        case .partitionUUID:
            let hex = bytes.filter { $0 != UInt8(ascii: "-") }
            let dashes = bytes.count - hex.count
            return hex.count == 32 && hex.allSatisfy(\.isHexDigit) && (dashes == 0 || (dashes == 4 && bytes.count == 36))
        case .partitionFlags:
            var digits = bytes[...]
            if digits.starts(with: Array("0x".utf8)) { digits = digits.dropFirst(2) }
            return !digits.isEmpty && digits.count <= 16 && digits.allSatisfy(\.isHexDigit)
        case .modificationTime, .size, .triesDone, .triesLeft:
            return !bytes.isEmpty && bytes.count <= 20 && bytes.allSatisfy(\.isASCIIDigit) && UInt64(value) != nil
        case .mode:
            guard !bytes.isEmpty, bytes.count <= 4, bytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }),
                  let mode = UInt32(value, radix: 8) else { return false }
            return mode & ~0o775 == 0
        case .noAuto, .readOnly, .growFileSystem:
            return parseBoolean(value) != nil
        case .sha256:
            return bytes.count == 64 && bytes.allSatisfy(\.isHexDigit)
        }
    }
}

/// Why a pattern is not valid.
public struct PatternError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The index of the first occurrence of `needle` in `haystack` at or after `start` (strstr).
private func firstOccurrence(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
    guard !needle.isEmpty else { return start }
    guard haystack.count >= needle.count else { return nil }
    var index = start
    while index + needle.count <= haystack.count {
        if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
        index += 1
    }
    return nil
}
