import Testing
@testable import EarlyextCore

/// One INI parsing case. Entries are written `Section/Key=Value@line` to keep the table short.
struct INICase: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    var entries: [String]
    var problemLines: [Int] = []

    var testDescription: String { name }
}

private let iniCases: [INICase] = [
    .init(name: "one entry", text: "[Extension]\nName=foo\n", entries: ["Extension/Name=foo@2"]),
    .init(name: "empty file", text: "", entries: []),
    .init(name: "only comments", text: "# a\n; b\n\n", entries: []),
    .init(name: "whitespace trimmed", text: "[S]\n  Key  =  some value  \n", entries: ["S/Key=some value@2"]),
    .init(name: "indented header", text: "  [S]  \nA=1", entries: ["S/A=1@2"]),
    .init(name: "comments with leading whitespace", text: "[S]\n   # A=1\n\t; B=2\nC=3\n", entries: ["S/C=3@4"]),
    .init(name: "no end-of-line comments", text: "[S]\nA=b # c\n", entries: ["S/A=b # c@2"]),
    .init(name: "repeated keys kept in order", text: "[S]\nA=1\nA=2\nA=3\n",
          entries: ["S/A=1@2", "S/A=2@3", "S/A=3@4"]),
    .init(name: "empty assignment kept", text: "[S]\nA=1\nA=\n", entries: ["S/A=1@2", "S/A=@3"]),
    .init(name: "equals in value", text: "[S]\nUrl=https://x/?a=b\n", entries: ["S/Url=https://x/?a=b@2"]),
    .init(name: "quotes kept verbatim", text: "[S]\nA=\"x y\"\n", entries: ["S/A=\"x y\"@2"]),
    .init(name: "continuation joined with a space", text: "[S]\nA=one\\\ntwo\n", entries: ["S/A=one two@2"]),
    .init(name: "continuation keeps the next line's indentation", text: "[S]\nA=one \\\n  two\nB=3\n",
          entries: ["S/A=one    two@2", "S/B=3@4"]),
    .init(name: "three-line continuation", text: "[S]\nA=a\\\nb\\\nc\nB=d", entries: ["S/A=a b c@2", "S/B=d@5"]),
    .init(name: "comment inside continuation skipped", text: "[S]\nA=a\\\n# note\nb\n", entries: ["S/A=a b@2"]),
    .init(name: "escaped backslash does not continue", text: "[S]\nA=a\\\\\nB=b\n",
          entries: ["S/A=a\\\\@2", "S/B=b@3"]),
    .init(name: "continuation at end of file", text: "[S]\nA=a\\", entries: ["S/A=a@2"]),
    .init(name: "several sections", text: "[A]\nX=1\n[B]\nX=2\n[A]\nY=3\n",
          entries: ["A/X=1@2", "B/X=2@4", "A/Y=3@6"]),
    .init(name: "CRLF line ends", text: "[S]\r\nA=1\r\nB=2\r\n", entries: ["S/A=1@2", "S/B=2@3"]),
    .init(name: "byte order mark", text: "\u{FEFF}[S]\nA=1\n", entries: ["S/A=1@2"]),
    .init(name: "sysupdate transfer", text: """
        [Transfer]
        Verify=false
        [Source]
        Type=url-file
        Path=https://extensions.flatcar.org/extensions/kubernetes/
        MatchPattern=kubernetes-@v-%a.raw
        [Target]
        InstancesMax=3
        """, entries: [
            "Transfer/Verify=false@2", "Source/Type=url-file@4",
            "Source/Path=https://extensions.flatcar.org/extensions/kubernetes/@5",
            "Source/MatchPattern=kubernetes-@v-%a.raw@6", "Target/InstancesMax=3@8",
        ]),
    // Bad lines: skipped and reported, never fatal.
    .init(name: "assignment before any section", text: "A=1\n[S]\nB=2\n", entries: ["S/B=2@3"], problemLines: [1]),
    .init(name: "missing equals", text: "[S]\njunk\nA=1\n", entries: ["S/A=1@3"], problemLines: [2]),
    .init(name: "empty key", text: "[S]\n = x\nA=1\n", entries: ["S/A=1@3"], problemLines: [2]),
    .init(name: "unclosed header", text: "[S\nA=1\n[T]\nB=2\n", entries: ["T/B=2@4"], problemLines: [1]),
    .init(name: "empty header", text: "[]\nA=1\n", entries: [], problemLines: [1]),
    .init(name: "text after header", text: "[S] x\nA=1\n", entries: [], problemLines: [1]),
    .init(name: "nested brackets", text: "[S[x]]\nA=1\n", entries: [], problemLines: [1]),
    .init(name: "bad line inside continuation", text: "[S]\nfoo\\\nbar\nA=1\n", entries: ["S/A=1@4"],
          problemLines: [2]),
    .init(name: "several problems", text: "X=0\n[S]\nA=1\nnonsense\n=2\n[\nB=3\n[T]\nC=4\n",
          entries: ["S/A=1@3", "T/C=4@9"], problemLines: [1, 4, 5, 6]),
]

@Suite("INIFile")
struct INIFileTests {
    @Test(arguments: iniCases)
    func parse(_ testCase: INICase) {
        let file = INIFile.parse(testCase.text)
        let rendered = file.entries.map { "\($0.section)/\($0.key)=\($0.value)@\($0.line)" }
        #expect(rendered == testCase.entries)
        #expect(file.problems.map(\.line) == testCase.problemLines, "\(file.problems)")
    }

    @Test func lookups() {
        let file = INIFile.parse("""
            [Extension]
            Name=kubernetes
            Required=no
            Required=yes
            [Policy]
            Require=verity
            [Extension]
            Name=
            """)
        #expect(file.sections == ["Extension", "Policy"])
        #expect(file.values("Extension", "Name") == ["kubernetes", ""])
        #expect(file.value("Extension", "Required") == "yes")
        #expect(file.value("Policy", "Require") == "verity")
        #expect(file.value("Policy", "Missing") == nil)
        #expect(file.values("Nope", "Name") == [])
        #expect(file.value("extension", "Name") == nil, "section names are case-sensitive")
    }

    @Test func problemMessages() {
        let file = INIFile.parse("A=1\n[S\n")
        #expect(file.problems == [
            ParseProblem(line: 1, message: "assignment outside of a section: 'A=1'"),
            ParseProblem(line: 2, message: "invalid section header '[S'"),
        ])
    }
}
