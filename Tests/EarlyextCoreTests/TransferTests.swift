import Testing
@testable import EarlyextCore

private let values = SpecifierValues(architecture: "x86-64", osRelease: OSRelease(fields: ["ID": "flatcar", "IMAGE_VERSION": "4152.2.0"]))

/// sysext-bakery's published file, exactly as anchors.md quotes it.
let bakeryTransfer = """
[Transfer]
Verify=false
[Source]
Type=url-file
Path=https://extensions.flatcar.org/extensions/kubernetes/
MatchPattern=kubernetes-@v-%a.raw
[Target]
InstancesMax=3
Type=regular-file
Path=/opt/extensions/kubernetes
CurrentSymlink=/etc/extensions/kubernetes.raw
"""

struct TransferCase: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    var usable: Bool
    var errors: [String] = []
    var warnings: [String] = []
    var check: (@Sendable (Transfer) -> Void)?
    var testDescription: String { name }
}

private func replacing(_ old: String, _ new: String) -> String {
    bakeryTransfer.replacingOccurrences(of: old, with: new)
}

extension String {
    func replacingOccurrences(of old: String, with new: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: old) {
            result += rest[..<range.lowerBound] + new
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

private let transferCases: [TransferCase] = [
    .init(name: "bakery's format", text: bakeryTransfer, usable: true, check: { t in
        #expect(t.verify == false)
        #expect(t.url == "https://extensions.flatcar.org/extensions/kubernetes/")
        #expect(t.sourcePatterns.map(\.text) == ["kubernetes-@v-x86-64.raw"])
        #expect(t.targetPatterns.map(\.text) == ["kubernetes-@v-x86-64.raw"], "the target pattern defaults to the source's")
        #expect(t.targetPath == "/opt/extensions/kubernetes")
        #expect(t.currentSymlink == "/etc/extensions/kubernetes.raw")
        #expect(t.instancesMax == 3)
        #expect(t.mode == 0o644)
        #expect(t.name == "kubernetes")
        #expect(t.source == "/etc/sysupdate.kubernetes.d/kubernetes.conf")
    }),
    .init(name: "Verify defaults to yes", text: replacing("Verify=false\n", ""), usable: true, check: { t in
        #expect(t.verify)
    }),
    .init(name: "relative CurrentSymlink is relative to the target Path", text: replacing("CurrentSymlink=/etc/extensions/kubernetes.raw", "CurrentSymlink=current.raw"),
          usable: true, check: { t in #expect(t.currentSymlink == "/opt/extensions/kubernetes/current.raw") }),
    .init(name: "explicit target pattern, mode, read-only", text: bakeryTransfer + "\nMatchPattern=k8s_@v.raw\nMode=0640\nReadOnly=yes\n",
          usable: true, check: { t in
              #expect(t.targetPatterns.map(\.text) == ["k8s_@v.raw"])
              #expect(t.mode == 0o440)
          }),
    .init(name: "several patterns", text: replacing("MatchPattern=kubernetes-@v-%a.raw", "MatchPattern=kubernetes-@v-%a.raw kubernetes_@v_%a.raw"),
          usable: true, check: { t in #expect(t.sourcePatterns.count == 2) }),
    .init(name: "InstancesMax=1 is raised to 2", text: replacing("InstancesMax=3", "InstancesMax=1"), usable: true,
          warnings: ["InstancesMax=: must be at least 2"], check: { t in #expect(t.instancesMax == 2) }),
    .init(name: "no InstancesMax: 3", text: replacing("InstancesMax=3\n", ""), usable: true, check: { t in #expect(t.instancesMax == 3) }),
    .init(name: "ProtectVersion with %A, MinVersion", text: replacing("Verify=false", "Verify=false\nProtectVersion=%A\nMinVersion=1.30"),
          usable: true, check: { t in
              #expect(t.protectedVersions == ["4152.2.0"])
              #expect(t.minVersion == "1.30")
          }),
    .init(name: "target type defaults to regular-file", text: replacing("Type=regular-file\n", ""), usable: true),
    .init(name: "no CurrentSymlink: named after the component", text: replacing("CurrentSymlink=/etc/extensions/kubernetes.raw", ""),
          usable: true, check: { t in #expect(t.name == "kubernetes" && t.currentSymlink == nil) }),
    .init(name: "unknown key is a warning", text: bakeryTransfer + "\nFrobnicate=yes\n", usable: true,
          warnings: ["kubernetes.conf:12: Frobnicate=: unknown key"]),
    .init(name: "unknown section is a warning", text: bakeryTransfer + "\n[Extra]\nA=1\n", usable: true, warnings: ["unknown section [Extra]"]),
    .init(name: "partition keys are ignored with a warning", text: bakeryTransfer + "\nTriesLeft=3\n", usable: true,
          warnings: ["TriesLeft=: applies to partition targets only"]),
    .init(name: "ChangeLog is fine", text: replacing("Verify=false", "Verify=false\nChangeLog=https://x/changes"), usable: true),
    // Skipped, with a clear message.
    .init(name: "unsupported source type", text: replacing("Type=url-file", "Type=url-tar"), usable: false,
          errors: ["[Source] Type=url-tar is not supported by earlyext (only url-file)"]),
    .init(name: "unsupported target type", text: replacing("Type=regular-file", "Type=directory"), usable: false,
          errors: ["[Target] Type=directory is not supported"]),
    .init(name: "partition target", text: replacing("Path=/opt/extensions/kubernetes", "Path=/dev/sda3").replacingOccurrences(of: "Type=regular-file\n", with: ""),
          usable: false, errors: ["Type=partition is not supported"]),
    .init(name: "not a type", text: replacing("Type=url-file", "Type=ftp"), usable: false, errors: ["kubernetes.conf:4: Type=: 'ftp' is not a resource type"]),
    .init(name: "Features", text: replacing("Verify=false", "Verify=false\nFeatures=devel"), usable: false, errors: ["Features="]),
    .init(name: "PathRelativeTo=boot", text: bakeryTransfer + "\nPathRelativeTo=boot\n", usable: false, errors: ["PathRelativeTo=boot", "not supported by earlyext"]),
    .init(name: "Path=auto", text: replacing("Path=/opt/extensions/kubernetes", "Path=auto"), usable: false, errors: ["Path=auto"]),
    .init(name: "bad Verify", text: replacing("Verify=false", "Verify=perhaps"), usable: false, errors: ["kubernetes.conf:2: Verify=: 'perhaps' is not a boolean"]),
    .init(name: "bad InstancesMax", text: replacing("InstancesMax=3", "InstancesMax=many"), usable: false, errors: ["kubernetes.conf:8: InstancesMax="]),
    .init(name: "relative target Path", text: replacing("Path=/opt/extensions/kubernetes", "Path=opt/extensions"), usable: false, errors: ["normalized absolute path"]),
    .init(name: "source Path not a URL", text: replacing("Path=https://extensions.flatcar.org/extensions/kubernetes/", "Path=/srv/ext"), usable: false,
          errors: ["kubernetes.conf:5: Path=: '/srv/ext' is not an http://"]),
    .init(name: "pattern without @v", text: replacing("MatchPattern=kubernetes-@v-%a.raw", "MatchPattern=kubernetes-%a.raw"), usable: false,
          errors: ["no @v version field"]),
    .init(name: "unknown specifier", text: replacing("MatchPattern=kubernetes-@v-%a.raw", "MatchPattern=kubernetes-@v-%q.raw"), usable: false,
          errors: ["unknown specifier %q"]),
    .init(name: "target pattern with @h", text: bakeryTransfer + "\nMatchPattern=k-@v-@h.raw\n", usable: false, errors: ["@h in a target pattern"]),
    .init(name: "no source pattern", text: replacing("MatchPattern=kubernetes-@v-%a.raw\n", ""), usable: false, errors: ["lacks MatchPattern="]),
    .init(name: "no source", text: "[Target]\nPath=/opt/x\n", usable: false, errors: ["lacks Type=", "lacks Path="]),
    .init(name: "bad Mode", text: bakeryTransfer + "\nMode=999\n", usable: false, errors: ["Mode=: '999' is not an octal"]),
]

@Test(arguments: transferCases)
func transferParsing(_ c: TransferCase) {
    let parse = Transfer.parse(files: [("/etc/sysupdate.kubernetes.d/kubernetes.conf", c.text)], id: "kubernetes",
                               component: "kubernetes", specifiers: values)
    #expect((parse.transfer != nil) == c.usable, "\(parse.errors)")
    for error in c.errors {
        #expect(parse.errors.contains { $0.contains(error) }, "no error containing '\(error)' in \(parse.errors)")
    }
    for warning in c.warnings {
        #expect(parse.warnings.contains { $0.contains(warning) }, "no warning containing '\(warning)' in \(parse.warnings)")
    }
    if let transfer = parse.transfer { c.check?(transfer) }
}

@Test func transferDirsPrecedenceMaskingAndDropIns() throws {
    let fixture = try Fixture()
    let k8s = bakeryTransfer
    try fixture.file("usr/lib/sysupdate.kubernetes.d/kubernetes.conf", k8s.replacingOccurrences(of: "InstancesMax=3", with: "InstancesMax=5"))
    try fixture.file("etc/sysupdate.kubernetes.d/kubernetes.conf", k8s)   // etc wins
    try fixture.file("run/sysupdate.kubernetes.d/kubernetes.conf.d/10-verify.conf", "[Transfer]\nVerify=yes\n")
    try fixture.file("etc/sysupdate.d/docker.transfer", k8s.replacingOccurrences(of: "kubernetes", with: "docker"))
    try fixture.file("usr/lib/sysupdate.d/masked.transfer", k8s.replacingOccurrences(of: "kubernetes", with: "masked"))
    try fixture.link("etc/sysupdate.d/masked.transfer", to: "/dev/null")
    try fixture.file("run/sysupdate.d/broken.conf", "[Source]\nType=tar\n")
    try fixture.file("etc/sysupdate.d/readme.txt", "not a transfer")

    let set = try readTransfers(root: fixture.root, specifiers: values)
    #expect(set.transfers.map(\.name) == ["docker", "kubernetes"])
    let kubernetes = set.transfers.first { $0.name == "kubernetes" }
    #expect(kubernetes?.instancesMax == 3, "etc overrides usr/lib")
    #expect(kubernetes?.verify == true, "the drop-in in run applies")
    #expect(kubernetes?.component == "kubernetes")
    #expect(set.transfers.first?.component == nil)
    #expect(set.masked == ["sysupdate.d/masked.transfer (masked by /etc/sysupdate.d/masked.transfer)"])
    #expect(set.skipped.count == 1)
    #expect(set.skipped.first?.contains("/run/sysupdate.d/broken.conf") == true)
    #expect(set.skipped.first?.contains("Type=tar is not supported") == true)
}

@Test func fetchOptionsFromConfig() {
    var options = FetchOptions()
    let ini = INIFile.parse("[Fetch]\nTimeout=1min 30s\nRetries=7\nColour=red\n[Policy]\nRequire=any\n")
    let (warnings, errors) = options.apply(config: ini, source: "/etc/earlyext/earlyext.conf")
    #expect(errors.isEmpty)
    #expect(warnings == ["/etc/earlyext/earlyext.conf:4: Colour=: unknown key, ignored"])
    #expect(options.connectTimeout == 90 && options.stallTimeout == 90 && options.retries == 7)

    var other = FetchOptions()
    let bad = other.apply(config: INIFile.parse("[Fetch]\nTimeout=soon\nRetries=-1\nTimeout=500ms\n"), source: "c")
    #expect(bad.errors.count == 2)
    #expect(bad.errors[0].hasPrefix("c:2: Timeout="))
    #expect(other.retries == FetchOptions().retries)
    #expect(other.connectTimeout == 0.5 && other.stallTimeout == 1)
}
