import Testing
@testable import EarlyextCore

private let x86 = SpecifierValues(
    architecture: "x86-64",
    osRelease: OSRelease(fields: ["ID": "flatcar", "VERSION_ID": "4152.2.0", "IMAGE_VERSION": "4152.2.0",
                                  "VARIANT_ID": "edge", "BUILD_ID": "2026-01-01", "IMAGE_ID": "flatcar-img"]),
    machineID: "0123456789abcdef0123456789abcdef", bootID: "fedcba9876543210fedcba9876543210",
    hostname: "node1.example.org", kernelRelease: "6.6.1")

// MARK: - Specifiers

struct SpecifierCase: Sendable, CustomTestStringConvertible {
    var input: String
    var output: String?   // nil: an error
    var testDescription: String { input }
}

private let specifierCases: [SpecifierCase] = [
    .init(input: "kubernetes-@v-%a.raw", output: "kubernetes-@v-x86-64.raw"),
    .init(input: "%A/%w/%W/%B/%M/%o", output: "4152.2.0/4152.2.0/edge/2026-01-01/flatcar-img/flatcar"),
    .init(input: "%m-%b", output: "0123456789abcdef0123456789abcdef-fedcba9876543210fedcba9876543210"),
    .init(input: "%H %l %v", output: "node1.example.org node1 6.6.1"),
    .init(input: "100%%", output: "100%"),
    .init(input: "%%a", output: "%a"),
    .init(input: "trailing %", output: "trailing %"),
    .init(input: "%-kept", output: "%-kept"),
    .init(input: "%T:%V", output: "/tmp:/var/tmp"),
    .init(input: "%q", output: nil),
    .init(input: "%Z", output: nil),
]

@Test(arguments: specifierCases)
func specifierExpansion(_ c: SpecifierCase) {
    let result = Result { () throws(SpecifierError) in try expandSpecifiers(c.input, x86) }
    switch (result, c.output) {
    case (.success(let text), let expected?): #expect(text == expected)
    case (.failure, nil): break
    default: Issue.record("\(c.input) → \(result), expected \(c.output ?? "an error")")
    }
}

@Test func missingValuesExpand() {
    var values = x86
    values.osRelease = OSRelease(fields: ["ID": "debian"])
    values.machineID = nil
    #expect((try? expandSpecifiers("[%A][%w]", values)) == "[][]", "unset os-release fields expand to nothing")
    #expect((try? expandSpecifiers("%m", values)) == nil, "no machine ID: an error")
    #expect(SpecifierValues.normalizedID("uninitialized\n") == nil)
    #expect(SpecifierValues.normalizedID("01234567-89ab-cdef-0123-456789ABCDEF\n") == "0123456789abcdef0123456789abcdef")
}

// MARK: - Patterns

struct PatternCase: Sendable, CustomTestStringConvertible {
    var pattern: String
    var name: String
    var version: String?   // nil: no match
    var testDescription: String { "\(pattern) ~ \(name)" }
}

private let k8s = "kubernetes-@v-x86-64.raw"  // kubernetes-@v-%a.raw on x86-64
private let patternCases: [PatternCase] = [
    .init(pattern: k8s, name: "kubernetes-v1.31.0-x86-64.raw", version: "v1.31.0"),
    .init(pattern: k8s, name: "kubernetes-1.30.2-x86-64.raw", version: "1.30.2"),
    .init(pattern: k8s, name: "kubernetes-v1.31.0-rc.1-x86-64.raw", version: "v1.31.0-rc.1"),
    .init(pattern: k8s, name: "kubernetes-v1.31.0-arm64.raw", version: nil),
    .init(pattern: k8s, name: "kubernetes-v1.31.0-x86.raw", version: nil),
    .init(pattern: k8s, name: "kubernetes-v1.31.0-x86-64.raw.sig", version: nil),
    .init(pattern: k8s, name: "kubernetes-v1.31.0-x86-64.raw-x86-64.raw", version: nil),   // no backtracking
    .init(pattern: k8s, name: "kubernetes--x86-64.raw", version: nil),                     // empty version
    .init(pattern: k8s, name: "kubernetes-1~rc1-x86-64.raw", version: nil),                // '~' is not a version char
    .init(pattern: k8s, name: "docker-1-x86-64.raw", version: nil),
    .init(pattern: k8s, name: "kubernetes-1-x86-64.raw", version: "1"),
    .init(pattern: "kubernetes-@v-arm64.raw", name: "kubernetes-1.2-arm64.raw", version: "1.2"),
    .init(pattern: "ext_@v.raw", name: "ext_1.2.3.raw", version: "1.2.3"),
    .init(pattern: "ext_@v", name: "ext_1.2.3.raw", version: "1.2.3.raw"),
    .init(pattern: "@v.raw", name: "7.raw", version: "7"),
    .init(pattern: "a@@b-@v.raw", name: "a@b-1.raw", version: "1"),
    .init(pattern: "100%-@v.raw", name: "100%-2.raw", version: "2"),
    .init(pattern: "ext-@v+@h.raw", name: "ext-1+\(String(repeating: "a", count: 64)).raw", version: "1"),
    .init(pattern: "ext-@v+@h.raw", name: "ext-1+abc.raw", version: nil),
    .init(pattern: "ext-@v_@t.raw", name: "ext-2_1700000000.raw", version: "2"),
    .init(pattern: "ext-@v_@t.raw", name: "ext-2_soon.raw", version: nil),
    .init(pattern: "ext-@v_@m.raw", name: "ext-2_0644.raw", version: "2"),
    .init(pattern: "ext-@v_@m.raw", name: "ext-2_0666.raw", version: nil),
    .init(pattern: "sub/ext-@v.raw", name: "sub/ext-3.raw", version: "3"),
]

@Test(arguments: patternCases)
func patternMatching(_ c: PatternCase) throws {
    let pattern = try MatchPattern(c.pattern)
    #expect(pattern.match(c.name) == c.version)
}

@Test func patternFromSpecifiers() throws {
    var arm = x86
    arm.architecture = "arm64"
    let raw = "kubernetes-@v-%a.raw"
    let onX86 = try MatchPattern(expandSpecifiers(raw, x86))
    let onArm = try MatchPattern(expandSpecifiers(raw, arm))
    #expect(onX86.match("kubernetes-1.0-x86-64.raw") == "1.0")
    #expect(onX86.match("kubernetes-1.0-arm64.raw") == nil)
    #expect(onArm.match("kubernetes-1.0-arm64.raw") == "1.0")
    #expect(onArm.match("kubernetes-1.0-x86-64.raw") == nil)
    #expect(try MatchPattern(expandSpecifiers("x-@v-%%a.raw", x86)).match("x-1-%a.raw") == "1")
}

@Test(arguments: ["ext.raw", "ext-@v@u.raw", "ext-@v-@v.raw", "ext-@x.raw", "ext-@v*.raw", "ext-@v-@", "**/ext-@v.raw", "ext-@v\t.raw"])
func invalidPatterns(_ text: String) {
    #expect(throws: PatternError.self) { try MatchPattern(text) }
}

@Test func patternFormatting() throws {
    #expect(try MatchPattern("kubernetes-@v-x86-64.raw").format(version: "v1.2") == "kubernetes-v1.2-x86-64.raw")
    #expect(try MatchPattern("a@@-@v.raw").format(version: "3") == "a@-3.raw")
    #expect(throws: PatternError.self) { try MatchPattern("ext-@v+@h.raw").format(version: "1") }
    #expect(throws: PatternError.self) { try MatchPattern("ext-@v.raw").format(version: "../x") }
}

// MARK: - SHA256SUMS

@Test func manifestParsing() {
    let a = String(repeating: "a", count: 64), b = String(repeating: "B", count: 64)
    let text = """
    \(a)  kubernetes-v1.30.0-x86-64.raw
    \(b) *kubernetes-v1.31.0-x86-64.raw
    \(a) kubernetes-missing-marker.raw
    \(a.dropLast())  short-digest.raw
    \(String(repeating: "g", count: 64))  not-hex.raw
    \\\(a)  escaped\\nname.raw

    \(a)  /absolute.raw
    \(a)  ../escape.raw
    \(a)  sub/dir/ok.raw
    \(a)  BEST-BEFORE-2030-01-01
    too short
    \(a)  crlf.raw\r
    """
    let manifest = Manifest.parse(text)
    #expect(manifest.entries.map(\.fileName) == ["kubernetes-v1.30.0-x86-64.raw", "kubernetes-v1.31.0-x86-64.raw", "sub/dir/ok.raw", "crlf.raw"])
    #expect(manifest.entries[1].sha256 == b.lowercased(), "the '*' binary marker; digests lowercased")
    #expect(manifest.entries.map(\.line) == [1, 2, 10, 13])
    #expect(manifest.problems.map(\.line) == [3, 4, 5, 6, 8, 9, 12])
    #expect(manifest.problems[0].message.contains("marker"))
    #expect(manifest.bestBefore == ["2030-01-01"])
    #expect(manifest.expiredMarker(today: "2026-11-21T10:00:00Z") == nil)
    #expect(manifest.expiredMarker(today: "2030-01-02T00:00:00Z") == "2030-01-01")
}

// MARK: - Newest version

@Test(arguments: [
    (["1.0", "1.10", "1.9"], "1.10"),
    // As in systemd: a suffix after "-" makes a version newer (only "~" sorts lower).
    (["v1.31.0", "v1.31.0-rc.1", "v1.30.9"], "v1.31.0-rc.1"),
    (["123", "123.1-1", "123-a", "124-1", "122.1"], "124-1"),
    (["2", "10", "9"], "10"),
])
func newestVersion(_ versions: [String], _ newest: String) {
    #expect(versions.max { compareVersions($0, $1) < 0 } == newest)
}
