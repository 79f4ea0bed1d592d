/// A JSON value (RFC 8259), with a writer and a strict parser, for `--json` output and the state
/// record. Objects keep their members in order, so what earlyext writes reads in a fixed order.
public enum JSON: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSON])
    /// Members in order. Duplicate keys are kept; lookups take the last one.
    case object([(String, JSON)])
}

// MARK: - Equality

extension JSON: Equatable {
    /// Structural equality: same case, same contents, object members in the same order.
    /// `.int(1)` and `.double(1)` differ, as do `.double(.nan)` and itself.
    public static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case let (.bool(a), .bool(b)): a == b
        case let (.int(a), .int(b)): a == b
        case let (.double(a), .double(b)): a == b
        case let (.string(a), .string(b)): a == b
        case let (.array(a), .array(b)): a == b
        case let (.object(a), .object(b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }
}

// MARK: - Access

extension JSON {
    /// The value of the last member named `key`, if this is an object that has one.
    public subscript(key: String) -> JSON? {
        objectValue?.last { $0.0 == key }?.1
    }

    /// The element at `index`, if this is an array that long.
    public subscript(index: Int) -> JSON? {
        guard let array = arrayValue, array.indices.contains(index) else { return nil }
        return array[index]
    }

    public var isNull: Bool { self == .null }

    public var boolValue: Bool? {
        if case .bool(let value) = self { value } else { nil }
    }

    public var intValue: Int? {
        if case .int(let value) = self { value } else { nil }
    }

    /// The number as a `Double`, whether it was written as an integer or not.
    public var doubleValue: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }

    public var stringValue: String? {
        if case .string(let value) = self { value } else { nil }
    }

    public var arrayValue: [JSON]? {
        if case .array(let value) = self { value } else { nil }
    }

    public var objectValue: [(String, JSON)]? {
        if case .object(let value) = self { value } else { nil }
    }
}

// MARK: - Literals

extension JSON: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    /// Keeps the members in the order written.
    public init(dictionaryLiteral elements: (String, JSON)...) { self = .object(elements) }
}

// MARK: - Writing

extension JSON: CustomStringConvertible {
    /// The compact rendering.
    public var description: String { render(pretty: false) }

    /// The value as JSON text. Pretty output puts each member and element on its own line,
    /// indented by two spaces per level, with `": "` after keys; compact output has no
    /// whitespace at all. Neither ends with a newline.
    ///
    /// Doubles are written in Swift's shortest round-trip form (`0.1`, `1e-05`, `100.0`). JSON
    /// has no infinity or NaN; those are written as `null`.
    public func render(pretty: Bool = true) -> String {
        var writer = JSONWriter(pretty: pretty)
        writer.write(self, level: 0)
        return writer.output
    }
}

private struct JSONWriter {
    let pretty: Bool
    var output = ""

    mutating func write(_ value: JSON, level: Int) {
        switch value {
        case .null: output += "null"
        case .bool(let bool): output += bool ? "true" : "false"
        case .int(let int): output += String(int)
        case .double(let double): output += double.isFinite ? double.description : "null"
        case .string(let string): writeString(string)
        case .array(let elements):
            writeContainer(elements, open: "[", close: "]", level: level) { writer, element in
                writer.write(element, level: level + 1)
            }
        case .object(let members):
            writeContainer(members, open: "{", close: "}", level: level) { writer, member in
                writer.writeString(member.0)
                writer.output += writer.pretty ? ": " : ":"
                writer.write(member.1, level: level + 1)
            }
        }
    }

    private mutating func writeContainer<Item>(
        _ items: [Item], open: String, close: String, level: Int,
        _ writeItem: (inout JSONWriter, Item) -> Void
    ) {
        output += open
        guard !items.isEmpty else {
            output += close
            return
        }
        for (index, item) in items.enumerated() {
            if index > 0 { output += "," }
            newline(level: level + 1)
            writeItem(&self, item)
        }
        newline(level: level)
        output += close
    }

    private mutating func newline(level: Int) {
        guard pretty else { return }
        output += "\n"
        for _ in 0..<level { output += "  " }
    }

    /// A string literal: `"` and `\` escaped, control characters as the short escapes where
    /// RFC 8259 has one (`\n`, `\t`, …) and `\u00XX` otherwise. Everything else is written as is.
    private mutating func writeString(_ string: String) {
        output += "\""
        // Most strings need no escape: append them whole.
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            output += string
            output += "\""
            return
        }
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}

// MARK: - Parsing

/// Why a text is not JSON, and where.
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    /// Offset in bytes into the UTF-8 text where the problem was found.
    public var offset: Int
    public var message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) at byte \(offset)" }
}

extension JSON {
    /// Parses `text` as one JSON value, strictly per RFC 8259: no comments, no trailing commas,
    /// no leading zeros, no raw control characters in strings, `\u` escapes with surrogates
    /// properly paired. Whitespace may surround the value. Numbers without fraction or exponent
    /// that fit in an `Int` become `.int`, all others `.double`. Nesting deeper than 512 levels
    /// is refused.
    public static func parse(_ text: String) throws(JSONParseError) -> JSON {
        var parser = JSONParser(bytes: Array(text.utf8))
        return try parser.parseDocument()
    }
}

private struct JSONParser {
    static let maximumDepth = 512

    let bytes: [UInt8]
    var position = 0
    var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws(JSONParseError) -> JSON {
        let value = try parseValue()
        skipWhitespace()
        if position < bytes.count { throw failure("unexpected \(describe(bytes[position])) after the value") }
        return value
    }

    // MARK: Values

    private mutating func parseValue() throws(JSONParseError) -> JSON {
        skipWhitespace()
        guard let byte = peek() else { throw failure("unexpected end of input, expected a value") }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try parseLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw failure("unexpected \(describe(byte)), expected a value")
        }
    }

    private mutating func parseObject() throws(JSONParseError) -> JSON {
        try enterContainer()
        var members: [(String, JSON)] = []
        skipWhitespace()
        if consume(UInt8(ascii: "}")) {
            depth -= 1
            return .object(members)
        }
        repeat {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw failure("expected a string as the member name") }
            let key = try parseString()
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { throw failure("expected ':' after the member name") }
            members.append((key, try parseValue()))
            skipWhitespace()
        } while consume(UInt8(ascii: ","))
        guard consume(UInt8(ascii: "}")) else { throw failure("expected ',' or '}' in the object") }
        depth -= 1
        return .object(members)
    }

    private mutating func parseArray() throws(JSONParseError) -> JSON {
        try enterContainer()
        var elements: [JSON] = []
        skipWhitespace()
        if consume(UInt8(ascii: "]")) {
            depth -= 1
            return .array(elements)
        }
        repeat {
            elements.append(try parseValue())
            skipWhitespace()
        } while consume(UInt8(ascii: ","))
        guard consume(UInt8(ascii: "]")) else { throw failure("expected ',' or ']' in the array") }
        depth -= 1
        return .array(elements)
    }

    /// Steps over the opening bracket, refusing to nest too deep.
    private mutating func enterContainer() throws(JSONParseError) {
        guard depth < Self.maximumDepth else { throw failure("nesting deeper than \(Self.maximumDepth) levels") }
        depth += 1
        position += 1
    }

    private mutating func parseLiteral(_ word: String) throws(JSONParseError) {
        let start = position
        for expected in word.utf8 {
            guard consume(expected) else {
                throw JSONParseError(offset: start, message: "invalid literal, expected '\(word)'")
            }
        }
    }

    // MARK: Strings

    private mutating func parseString() throws(JSONParseError) -> String {
        let start = position
        position += 1  // the opening quote
        var utf8: [UInt8] = []
        while true {
            guard let byte = next() else {
                throw JSONParseError(offset: start, message: "unterminated string")
            }
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &utf8)
            case 0x00..<0x20:
                position -= 1
                throw failure("unescaped control character in string")
            default:
                utf8.append(byte)
            }
        }
    }

    /// Handles the character after a backslash.
    private mutating func parseEscape(into utf8: inout [UInt8]) throws(JSONParseError) {
        let start = position - 1
        guard let byte = next() else { throw JSONParseError(offset: start, message: "unterminated string") }
        let simple: UInt8? = switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): byte
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        default: nil
        }
        if let simple {
            utf8.append(simple)
            return
        }
        guard byte == UInt8(ascii: "u") else {
            throw JSONParseError(offset: start, message: "invalid escape '\\\(Character(Unicode.Scalar(byte)))'")
        }

        var code = try parseHexQuad()
        if (0xD800...0xDBFF).contains(code) {
            // A high surrogate must be followed by an escaped low one.
            guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")) else {
                throw JSONParseError(offset: start, message: "unpaired surrogate in \\u escape")
            }
            let low = try parseHexQuad()
            guard (0xDC00...0xDFFF).contains(low) else {
                throw JSONParseError(offset: start, message: "unpaired surrogate in \\u escape")
            }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(code) {
            throw JSONParseError(offset: start, message: "unpaired surrogate in \\u escape")
        }
        // Every value left is a valid scalar: surrogates were paired or refused above.
        UTF8.encode(Unicode.Scalar(code)!) { utf8.append($0) }
    }

    private mutating func parseHexQuad() throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = peek(), let digit = hexValue(byte) else {
                throw failure("expected four hexadecimal digits after \\u")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    // MARK: Numbers

    private mutating func parseNumber() throws(JSONParseError) -> JSON {
        let start = position
        _ = consume(UInt8(ascii: "-"))
        if consume(UInt8(ascii: "0")) {
            if let byte = peek(), byte.isASCIIDigit { throw failure("leading zero in number") }
        } else {
            guard skipDigits() else { throw failure("expected a digit") }
        }
        var isInteger = true
        if consume(UInt8(ascii: ".")) {
            guard skipDigits() else { throw failure("expected a digit after '.'") }
            isInteger = false
        }
        if consume(UInt8(ascii: "e")) || consume(UInt8(ascii: "E")) {
            _ = consume(UInt8(ascii: "+")) || consume(UInt8(ascii: "-"))
            guard skipDigits() else { throw failure("expected a digit in the exponent") }
            isInteger = false
        }

        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isInteger, let int = Int(text) { return .int(int) }
        guard let double = Double(text), double.isFinite else {
            throw JSONParseError(offset: start, message: "number out of range")
        }
        return .double(double)
    }

    /// Steps over a run of digits; false if there was none.
    private mutating func skipDigits() -> Bool {
        let start = position
        while let byte = peek(), byte.isASCIIDigit { position += 1 }
        return position > start
    }

    // MARK: Bytes

    private func peek() -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    private mutating func next() -> UInt8? {
        guard let byte = peek() else { return nil }
        position += 1
        return byte
    }

    /// Steps over `byte` if it is next.
    private mutating func consume(_ byte: UInt8) -> Bool {
        guard peek() == byte else { return false }
        position += 1
        return true
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
    }

    private func failure(_ message: String) -> JSONParseError {
        JSONParseError(offset: position, message: message)
    }

    private func describe(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? "character '\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    private func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
