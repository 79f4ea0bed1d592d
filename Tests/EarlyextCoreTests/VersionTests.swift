import Testing
@testable import EarlyextCore

/// Every (older, newer) pair of an ascending chain.
private func orderedPairs(_ chain: [String]) -> [(String, String)] {
    chain.indices.flatMap { i in chain[(i + 1)...].map { (chain[i], $0) } }
}

/// The order written down in anchors.md.
private let anchorChain = [
    "122.1", "123~rc1-1", "123", "123-a", "123-1", "123^post1", "123.1-1", "123a-1", "124-1",
]

/// The longer chain of the UAPI Version Format Specification, with systemd's own test list
/// folded in.
private let specificationChain = [
    "~1", "", "ab", "abb", "abc", "0001", "002", "12", "122", "122.1", "122.9",
    "123~rc1", "123~rc1-1", "123", "123-a", "123-a.1", "123-a1", "123-a1.1", "123-1", "123-1.1", "123-3",
    "123-3.1", "123^patch1", "123^post1", "123^1", "123.a-1", "123.1-1", "123a-1", "124", "124-1",
]

@Suite("compareVersions")
struct VersionTests {
    @Test("anchors.md chain, both directions", arguments: orderedPairs(anchorChain))
    func anchorOrder(older: String, newer: String) {
        #expect(compareVersions(older, newer) == -1)
        #expect(compareVersions(newer, older) == 1)
    }

    @Test("specification chain, both directions", arguments: orderedPairs(specificationChain))
    func specificationOrder(older: String, newer: String) {
        #expect(compareVersions(older, newer) == -1)
        #expect(compareVersions(newer, older) == 1)
    }

    @Test("every version equals itself", arguments: specificationChain)
    func reflexive(version: String) {
        #expect(compareVersions(version, version) == 0)
    }

    /// (a, b, expected compareVersions(a, b)): the UAPI examples, systemd's corner cases and
    /// rpm's test suite cases as systemd adopted them.
    @Test("examples", arguments: [
        // UAPI Version Format Specification
        ("11", "11", 0), ("systemd-123", "systemd-123", 0), ("bar-123", "foo-123", -1),
        ("123a", "123", 1), ("123.a", "123", 1), ("123.a", "123.b", -1), ("123a", "123.a", 1),
        ("11α", "11β", 0), ("B", "a", -1), ("A", "a", -1), ("", "0", -1), ("0.", "0", 1), ("0.0", "0", 1),
        ("0", "~", 1), ("", "~", 1), ("1_", "1", 0), ("_1", "1", 0), ("1_", "1.2", -1),
        ("1_2_3", "1.3.3", 1), ("1+", "1", 0), ("+1", "1", 0), ("1+", "1.2", -1), ("1+2+3", "1.3.3", 1),
        // leading zeros
        ("00123", "123", 0), ("1.001", "1.1", 0), ("10.0001", "10.0039", -1), ("0", "000", 0),
        ("007", "7", 0), ("1.010", "1.9", 1),
        // empty strings and strings of ignored characters
        ("", "", 0), ("", "_", 0), ("_", "+", 0), ("0_", "0", 0), ("_0_", "0", 0), ("~", "~", 0), ("~", "", -1),
        // systemd's corner cases
        ("123.", "123", 1), ("12_3", "123", -1), ("12_3", "12", 1), ("12_3", "12.3", 1), ("123.0", "123", 1),
        ("123_0", "123", 1), ("123..0", "123.0", -1), ("123_aa2-67.89", "123aa+2-67.89", 0),
        ("123.45-67.88", "123.45-67.89", -1), ("123.45-67.89", "123.45-67.89a", -1),
        ("123.45-67.ab", "123.45-67.89", -1), ("123-99.99", "123.45-67.89", -1),
        ("123~rc1-99.99", "123~rc2-67.89", -1), ("123^45-67.89", "123.45-67.89", -1),
        // from rpm's suite, as systemd orders them
        ("1.0", "2.0", -1), ("2.0.1a", "2.0.1", 1), ("5.5p1", "5.5p10", -1), ("10xyz", "10.1xyz", 1),
        ("xyz.4", "8", -1), ("6.0.rc1", "6.0", 1), ("10b2", "10a1", 1), ("1.0a", "1.0aa", -1),
        ("4.999.9", "5.0", -1), ("2.0", "2_0", -1), ("1.0~rc1~git123", "1.0~rc1", -1), ("1.0^", "1.0", 1),
        ("1.0^git1", "1.01", -1), ("1.0^20160101", "1.0.1", -1), ("1.0^git1~pre", "1.0^git1", -1),
        ("1b.fc17", "1.fc17", 1), ("1.1.αα", "1.1.β", 0),
        // numbers longer than any integer type
        ("99999999999999999999999", "99999999999999999999998", 1),
    ] as [(String, String, Int)])
    func example(a: String, b: String, expected: Int) {
        #expect(compareVersions(a, b) == expected)
        #expect(compareVersions(b, a) == -expected)
    }

    @Test func versionSortsLikeCompareVersions() {
        let sorted = anchorChain.reversed().map { Version($0) }.sorted()
        #expect(sorted.map(\.string) == anchorChain)
        #expect(Version("1_") == Version("1"))
        #expect(Version("123~rc1") < "123")
        #expect(sorted.max()?.description == "124-1")
    }
}
