import Testing
@testable import EarlyextCore

private let hash = String(repeating: "ab", count: 32)

struct SelectionCase: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    /// nil: the file must be rejected; else the expected selection's (name, url, path, required).
    var expect: (String, String, String, Bool)?
    /// Substrings that must appear in an error (each) / a warning (each).
    var errors: [String] = []
    var warnings: [String] = []
    var testDescription: String { name }
}

private let selectionCases: [SelectionCase] = [
    .init(name: "minimal https", text: "[Extension]\nName=k8s\nUrl=https://x.example/k8s.raw\nSHA256=\(hash)\n",
          expect: ("k8s", "https://x.example/k8s.raw", "/etc/extensions/k8s.raw", false)),
    .init(name: "all keys", text: """
        [Extension]
        Name=docker
        Url=http://x.example/docker.raw
        SHA256=\(hash.uppercased())
        Required=yes
        Path=/var/lib/extensions/docker.raw
        Policy=verity
        """, expect: ("docker", "http://x.example/docker.raw", "/var/lib/extensions/docker.raw", true)),
    .init(name: "relative Path made absolute", text: "[Extension]\nName=a\nUrl=file:///srv/a.raw\nPath=etc/extensions/b.raw\n",
          expect: ("a", "file:///srv/a.raw", "/etc/extensions/b.raw", false)),
    .init(name: "file URL needs no digest", text: "[Extension]\nName=a\nUrl=file:///srv/a.raw\n",
          expect: ("a", "file:///srv/a.raw", "/etc/extensions/a.raw", false)),
    .init(name: "Required=0", text: "[Extension]\nName=a\nUrl=file:///a.raw\nRequired=0\n",
          expect: ("a", "file:///a.raw", "/etc/extensions/a.raw", false)),
    .init(name: "unknown key is a warning", text: "[Extension]\nName=a\nUrl=file:///a.raw\nColour=blue\n",
          expect: ("a", "file:///a.raw", "/etc/extensions/a.raw", false), warnings: ["f.conf:4: unknown key Colour="]),
    .init(name: "unknown section is a warning", text: "[Extension]\nName=a\nUrl=file:///a.raw\n[Other]\nX=1\n",
          expect: ("a", "file:///a.raw", "/etc/extensions/a.raw", false), warnings: ["unknown section [Other]"]),
    .init(name: "Path outside the search dirs is a warning", text: "[Extension]\nName=a\nUrl=file:///a.raw\nPath=/opt/a.raw\n",
          expect: ("a", "file:///a.raw", "/opt/a.raw", false), warnings: ["f.conf:4: Path=/opt/a.raw is outside"]),
    // Errors: each names the file, the line and the key.
    .init(name: "bad SHA256", text: "[Extension]\nName=a\nUrl=https://x/a.raw\nSHA256=1234\n", expect: nil,
          errors: ["f.conf:4: SHA256=: '1234' is not 64 hex digits"]),
    .init(name: "SHA256 not hex", text: "[Extension]\nName=a\nUrl=https://x/a.raw\nSHA256=\(String(repeating: "zz", count: 32))\n",
          expect: nil, errors: ["f.conf:4: SHA256="]),
    .init(name: "missing SHA256 for https", text: "[Extension]\nName=a\nUrl=https://x/a.raw\n", expect: nil,
          errors: ["SHA256=: missing: required for http(s)"]),
    .init(name: "bad Required", text: "[Extension]\nName=a\nUrl=file:///a.raw\nRequired=maybe\n", expect: nil,
          errors: ["f.conf:4: Required=: 'maybe' is not a boolean"]),
    .init(name: "missing Name", text: "[Extension]\nUrl=file:///a.raw\n", expect: nil, errors: ["Name=: missing"]),
    .init(name: "missing Url", text: "[Extension]\nName=a\n", expect: nil, errors: ["Url=: missing"]),
    .init(name: "unsupported URL scheme", text: "[Extension]\nName=a\nUrl=ftp://x/a.raw\n", expect: nil,
          errors: ["f.conf:3: Url=: 'ftp://x/a.raw' is not"]),
    .init(name: "invalid name", text: "[Extension]\nName=a/b\nUrl=file:///a.raw\n", expect: nil, errors: ["f.conf:2: Name="]),
    .init(name: "Path with ..", text: "[Extension]\nName=a\nUrl=file:///a.raw\nPath=/etc/../../a.raw\n", expect: nil,
          errors: ["f.conf:4: Path="]),
    .init(name: "Path without .raw", text: "[Extension]\nName=a\nUrl=file:///a.raw\nPath=/etc/extensions/a\n", expect: nil,
          errors: ["does not end in .raw"]),
    .init(name: "bad Policy", text: "[Extension]\nName=a\nUrl=file:///a.raw\nPolicy=strict\n", expect: nil,
          errors: ["f.conf:4: Policy=: 'strict'"]),
    .init(name: "malformed line", text: "[Extension]\nName=a\nUrl=file:///a.raw\njunk\n", expect: nil, errors: ["f.conf:4: missing '='"]),
    .init(name: "no [Extension] section", text: "[Other]\nName=a\n", expect: nil, errors: ["Name=: missing"]),
]

@Test(arguments: selectionCases)
func selectionValidation(_ c: SelectionCase) {
    let parse = Selection.parse(c.text, source: "f.conf")
    if let (name, url, path, required) = c.expect {
        #expect(parse.errors.isEmpty, "\(parse.errors)")
        #expect(parse.selection?.name == name)
        #expect(parse.selection?.url == url)
        #expect(parse.selection?.path == path)
        #expect(parse.selection?.required == required)
        if url.hasPrefix("http") { #expect(parse.selection?.sha256 == hash) }
    } else {
        #expect(parse.selection == nil)
        #expect(!parse.errors.isEmpty)
    }
    for error in c.errors {
        #expect(parse.errors.contains { $0.contains(error) }, "no error containing '\(error)' in \(parse.errors)")
    }
    for warning in c.warnings {
        #expect(parse.warnings.contains { $0.contains(warning) }, "no warning containing '\(warning)' in \(parse.warnings)")
    }
}

@Test func brokenRequiredSelectionIsMarkedRequired() {
    let parse = Selection.parse("[Extension]\nName=a\nUrl=https://x/a.raw\nRequired=yes\n", source: "f.conf")
    #expect(parse.selection == nil)
    #expect(parse.required)
}

@Test func selectionDirsPrecedenceAndMasking() throws {
    let fixture = try Fixture()
    let good = { (name: String) in "[Extension]\nName=\(name)\nUrl=file:///srv/\(name).raw\n" }
    try fixture.file("usr/lib/earlyext/select.d/a.conf", good("vendor-a"))
    try fixture.file("etc/earlyext/select.d/a.conf", good("admin-a"))      // overrides the vendor's a.conf
    try fixture.file("usr/lib/earlyext/select.d/b.conf", good("b"))
    try fixture.file("etc/earlyext/select.d/b.conf", "")                      // empty: masks b
    try fixture.file("usr/lib/earlyext/select.d/c.conf", good("c"))
    try fixture.link("etc/earlyext/select.d/c.conf", to: "/dev/null")         // /dev/null: masks c
    try fixture.file("usr/lib/earlyext/select.d/d.conf", good("d"))           // vendor only
    try fixture.file("etc/earlyext/select.d/e.conf", "[Extension]\nName=e\nUrl=https://x/e.raw\nRequired=yes\n")
    try fixture.file("etc/earlyext/select.d/f.conf", good("d"))               // same Name as d.conf
    try fixture.file("etc/earlyext/select.d/notes.txt", good("ignored"))     // not .conf

    let set = try readSelections(root: fixture.root)
    #expect(set.selections.map(\.name) == ["admin-a", "d"])
    #expect(set.selections.first?.source == "/etc/earlyext/select.d/a.conf")
    #expect(set.masked.count == 2)
    #expect(set.masked.contains { $0.hasPrefix("b.conf") })
    #expect(set.masked.contains { $0.hasPrefix("c.conf") })
    #expect(set.rejected.count == 2)
    #expect(set.rejected.contains { $0.required && $0.errors.contains { $0.contains("e.conf") && $0.contains("SHA256=") } })
    #expect(set.rejected.contains { $0.errors.contains { $0.contains("Name=d is already selected by /usr/lib/earlyext/select.d/d.conf") } })
}
