import Testing
@testable import EarlyextCore

private let sample: JSON = [
    "name": "kubernetes",
    "version": "v1.31.0",
    "size": 123_456_789,
    "ratio": 0.25,
    "merged": true,
    "verity": nil,
    "hierarchies": ["/usr", "/opt"],
    "timings": ["fetch": 1.5, "mount": 0.002],
    "empty": [:],
    "none": [],
]

@Suite("JSON")
struct JSONTests {
    @Test func prettyRendering() {
        let value: JSON = ["a": 1, "b": [true, nil], "c": [:], "d": []]
        #expect(value.render() == """
            {
              "a": 1,
              "b": [
                true,
                null
              ],
              "c": {},
              "d": []
            }
            """)
        #expect(value.render(pretty: false) == #"{"a":1,"b":[true,null],"c":{},"d":[]}"#)
    }

    @Test("scalars render", arguments: [
        (JSON.null, "null"), (true, "true"), (false, "false"), (0, "0"), (-42, "-42"),
        (.int(Int.max), "9223372036854775807"), (1.0, "1.0"), (0.1, "0.1"), (-2.5, "-2.5"), (1e-5, "1e-05"),
        (1e100, "1e+100"), (.double(.infinity), "null"), (.double(.nan), "null"), ("", #""""#),
    ] as [(JSON, String)])
    func scalar(value: JSON, text: String) {
        #expect(value.render() == text)
    }

    @Test("string escaping", arguments: [
        ("plain", #""plain""#), ("a\"b", #""a\"b""#), ("a\\b", #""a\\b""#), ("line\nbreak", #""line\nbreak""#),
        ("\t\r\u{08}\u{0C}", #""\t\r\b\f""#), ("\u{00}\u{01}\u{1F}", #""\u0000\u0001\u001f""#),
        ("a/b", #""a/b""#), ("ünïcødé ☃ 𝄞", "\"ünïcødé ☃ 𝄞\""), ("\u{7F}", "\"\u{7F}\""),
    ])
    func escaping(string: String, text: String) throws {
        #expect(JSON.string(string).render() == text)
        #expect(try JSON.parse(text) == .string(string))
    }

    @Test("round trip", arguments: [sample, [], [:], "x", 0, -0.5, 5e-324, 1.7976931348623157e308, [[[[1]]]], nil])
    func roundTrip(value: JSON) throws {
        #expect(try JSON.parse(value.render()) == value)
        #expect(try JSON.parse(value.render(pretty: false)) == value)
    }

    @Test("parsing", arguments: [
        (" \t\n\r 1 \n", JSON.int(1)), ("-0", 0), ("1.5e3", 1500.0), ("1E-2", 0.01), ("2e+2", 200.0),
        ("9223372036854775807", .int(.max)), ("9223372036854775808", 9223372036854775808.0),
        (#""\u00e9\u20AC""#, "é€"), (#""\ud834\udd1e""#, "𝄞"), (#""\/""#, "/"), (#""\u0000""#, "\u{0}"),
        (#"{"a":1,"a":2}"#, .object([("a", 1), ("a", 2)])), ("[1,[2,[3]]]", [1, [2, [3]]]),
        (#"{ "k" : [ ] , "l" : { } }"#, ["k": [], "l": [:]]),
    ] as [(String, JSON)])
    func parse(text: String, value: JSON) throws {
        #expect(try JSON.parse(text) == value)
    }

    @Test("malformed input", arguments: [
        ("", 0), ("   ", 3), ("nul", 0), ("tru", 0), ("True", 0), ("[1,]", 3), ("[1 2]", 3), (#"{"a":1,}"#, 7),
        (#"{"a" 1}"#, 5), ("{a:1}", 1), ("{1:2}", 1), ("[", 1), ("]", 0), (#"{"a":1"#, 6), ("01", 1), ("-", 1),
        ("1.", 2), (".5", 0), ("1e", 2), ("+1", 0), ("0x10", 1), ("1e999", 0), (#""abc"#, 0),
        ("\"a\tb\"", 2), (#""\x""#, 1), (#""\u12""#, 5), (#""\ud800""#, 1), (#""\udc00""#, 1),
        (#""\ud800\u0041""#, 1), ("1 2", 2), ("[1] x", 4), ("// comment\n1", 0), ("NaN", 0), ("'a'", 0),
        (String(repeating: "[", count: 600), 512),
    ] as [(String, Int)])
    func malformed(text: String, offset: Int) {
        #expect {
            try JSON.parse(text)
        } throws: { error in
            (error as? JSONParseError)?.offset == offset
        }
    }

    @Test func errorDescription() {
        do {
            _ = try JSON.parse("[1,]")
            Issue.record("parsed")
        } catch {
            #expect(error.description == "unexpected character ']', expected a value at byte 3")
        }
    }

    @Test func accessors() {
        #expect(sample["name"]?.stringValue == "kubernetes")
        #expect(sample["size"]?.intValue == 123_456_789)
        #expect(sample["size"]?.doubleValue == 123_456_789)
        #expect(sample["ratio"]?.doubleValue == 0.25)
        #expect(sample["ratio"]?.intValue == nil)
        #expect(sample["merged"]?.boolValue == true)
        #expect(sample["verity"]?.isNull == true)
        #expect(sample["hierarchies"]?[1]?.stringValue == "/opt")
        #expect(sample["hierarchies"]?[2] == nil)
        #expect(sample["timings"]?["mount"] == 0.002)
        #expect(sample["missing"] == nil)
        #expect(sample.objectValue?.map(\.0).first == "name")
        #expect(JSON.array([1])["x"] == nil)
        #expect(JSON.object([("a", 1), ("a", 2)])["a"] == 2)
    }

    @Test func equalityIsOrderedAndTyped() {
        #expect(JSON.object([("a", 1), ("b", 2)]) != .object([("b", 2), ("a", 1)]))
        #expect(JSON.int(1) != .double(1))
        #expect(JSON.object([("a", 1)]) != .object([("a", 1), ("b", 2)]))
        #expect(sample.description == sample.render(pretty: false))
    }
}
