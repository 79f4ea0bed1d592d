import Testing
@testable import EarlyextCore

/// One row of the matching table: extension-release fields, host fields, host scope, expected result.
struct MatchCase: Sendable, CustomTestStringConvertible {
    var label: String
    var image: [String: String]
    var host: [String: String] = ["ID": "debian", "VERSION_ID": "12"]
    var scope: Scope = .system
    var expected: MatchResult
    var testDescription: String { label }
}

private let debian12 = ["ID": "debian", "VERSION_ID": "12"]

let matchCases: [MatchCase] = [
    // ID and VERSION_ID
    MatchCase(label: "same ID and VERSION_ID", image: debian12, expected: .compatible),
    MatchCase(label: "VERSION_ID differs", image: ["ID": "debian", "VERSION_ID": "11"],
              expected: .incompatible("VERSION_ID=11 does not match host VERSION_ID=12")),
    MatchCase(label: "VERSION_ID missing in image", image: ["ID": "debian"],
              expected: .incompatible("VERSION_ID is not set but host has VERSION_ID=12")),
    MatchCase(label: "VERSION_ID empty in image", image: ["ID": "debian", "VERSION_ID": ""],
              expected: .incompatible("VERSION_ID is not set but host has VERSION_ID=12")),
    MatchCase(label: "other ID", image: ["ID": "fedora", "VERSION_ID": "12"],
              expected: .incompatible("ID=fedora does not match host ID=debian (nor ID_LIKE)")),
    MatchCase(label: "ID is case-sensitive", image: ["ID": "Debian", "VERSION_ID": "12"],
              expected: .incompatible("ID=Debian does not match host ID=debian (nor ID_LIKE)")),
    MatchCase(label: "no ID", image: ["VERSION_ID": "12"],
              expected: .incompatible("ID is not set (it must be _any or match host ID=debian)")),
    MatchCase(label: "empty ID", image: ["ID": "", "VERSION_ID": "12"],
              expected: .incompatible("ID is not set (it must be _any or match host ID=debian)")),
    MatchCase(label: "ID=_any", image: ["ID": "_any"], expected: .compatible),
    MatchCase(label: "ID=_any skips VERSION_ID", image: ["ID": "_any", "VERSION_ID": "99"], expected: .compatible),
    MatchCase(label: "ID=_any skips SYSEXT_LEVEL", image: ["ID": "_any", "SYSEXT_LEVEL": "9"],
              host: ["ID": "debian", "SYSEXT_LEVEL": "1"], expected: .compatible),
    MatchCase(label: "host without ID", image: debian12, host: ["VERSION_ID": "12"],
              expected: .incompatible("host os-release has no ID")),

    // ID_LIKE (v258+)
    MatchCase(label: "ID in host ID_LIKE", image: ["ID": "debian", "VERSION_ID": "24.04"],
              host: ["ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "24.04"], expected: .compatible),
    MatchCase(label: "ID in multi-word ID_LIKE", image: ["ID": "centos", "VERSION_ID": "9"],
              host: ["ID": "rocky", "ID_LIKE": "rhel centos fedora", "VERSION_ID": "9"], expected: .compatible),
    MatchCase(label: "ID not in ID_LIKE", image: ["ID": "fedora", "VERSION_ID": "24.04"],
              host: ["ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "24.04"],
              expected: .incompatible("ID=fedora does not match host ID=ubuntu (nor ID_LIKE=debian)")),
    MatchCase(label: "ID_LIKE matches whole words only", image: ["ID": "debian", "VERSION_ID": "1"],
              host: ["ID": "mine", "ID_LIKE": "debianish", "VERSION_ID": "1"],
              expected: .incompatible("ID=debian does not match host ID=mine (nor ID_LIKE=debianish)")),
    MatchCase(label: "ID_LIKE match still checks VERSION_ID", image: ["ID": "debian", "VERSION_ID": "12"],
              host: ["ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "24.04"],
              expected: .incompatible("VERSION_ID=12 does not match host VERSION_ID=24.04")),

    // Rolling-release host
    MatchCase(label: "rolling host, image without version", image: ["ID": "arch"], host: ["ID": "arch"], expected: .compatible),
    MatchCase(label: "rolling host ignores image VERSION_ID", image: ["ID": "arch", "VERSION_ID": "7"],
              host: ["ID": "arch"], expected: .compatible),
    MatchCase(label: "host VERSION_ID empty counts as unset", image: ["ID": "arch", "SYSEXT_LEVEL": "3"],
              host: ["ID": "arch", "VERSION_ID": ""], expected: .compatible),

    // SYSEXT_LEVEL
    MatchCase(label: "equal SYSEXT_LEVEL wins over differing VERSION_ID", image: ["ID": "debian", "VERSION_ID": "11", "SYSEXT_LEVEL": "1.0"],
              host: ["ID": "debian", "VERSION_ID": "12", "SYSEXT_LEVEL": "1.0"], expected: .compatible),
    MatchCase(label: "SYSEXT_LEVEL differs", image: ["ID": "debian", "VERSION_ID": "12", "SYSEXT_LEVEL": "2.0"],
              host: ["ID": "debian", "VERSION_ID": "12", "SYSEXT_LEVEL": "1.0"],
              expected: .incompatible("SYSEXT_LEVEL=2.0 does not match host SYSEXT_LEVEL=1.0")),
    MatchCase(label: "SYSEXT_LEVEL compares as strings", image: ["ID": "debian", "SYSEXT_LEVEL": "1"],
              host: ["ID": "debian", "SYSEXT_LEVEL": "1.0"],
              expected: .incompatible("SYSEXT_LEVEL=1 does not match host SYSEXT_LEVEL=1.0")),
    MatchCase(label: "host level and version, image only VERSION_ID equal", image: debian12,
              host: ["ID": "debian", "VERSION_ID": "12", "SYSEXT_LEVEL": "1.0"], expected: .compatible),
    MatchCase(label: "host level and version, image only VERSION_ID differs", image: ["ID": "debian", "VERSION_ID": "13"],
              host: ["ID": "debian", "VERSION_ID": "12", "SYSEXT_LEVEL": "1.0"],
              expected: .incompatible("VERSION_ID=13 does not match host VERSION_ID=12")),
    MatchCase(label: "host only SYSEXT_LEVEL, image without level (systemd accepts)", image: ["ID": "debian", "VERSION_ID": "5"],
              host: ["ID": "debian", "SYSEXT_LEVEL": "1.0"], expected: .compatible),
    MatchCase(label: "host only SYSEXT_LEVEL, image level differs", image: ["ID": "debian", "SYSEXT_LEVEL": "0.9"],
              host: ["ID": "debian", "SYSEXT_LEVEL": "1.0"],
              expected: .incompatible("SYSEXT_LEVEL=0.9 does not match host SYSEXT_LEVEL=1.0")),
    MatchCase(label: "host only VERSION_ID, image level and equal version", image: ["ID": "debian", "VERSION_ID": "12", "SYSEXT_LEVEL": "1.0"],
              expected: .compatible),
    MatchCase(label: "host only VERSION_ID, image only level", image: ["ID": "debian", "SYSEXT_LEVEL": "1.0"],
              expected: .incompatible("VERSION_ID is not set but host has VERSION_ID=12")),

    // ARCHITECTURE
    MatchCase(label: "same architecture", image: ["ID": "_any", "ARCHITECTURE": "x86-64"], expected: .compatible),
    MatchCase(label: "ARCHITECTURE=_any", image: ["ID": "_any", "ARCHITECTURE": "_any"], expected: .compatible),
    MatchCase(label: "empty ARCHITECTURE", image: ["ID": "_any", "ARCHITECTURE": ""], expected: .compatible),
    MatchCase(label: "other architecture", image: ["ID": "_any", "ARCHITECTURE": "arm64"],
              expected: .incompatible("ARCHITECTURE=arm64 does not match host architecture x86-64")),
    MatchCase(label: "uname spelling is not systemd's", image: ["ID": "_any", "ARCHITECTURE": "x86_64"],
              expected: .incompatible("ARCHITECTURE=x86_64 does not match host architecture x86-64")),
    MatchCase(label: "architecture is checked before ID", image: ["ID": "fedora", "ARCHITECTURE": "arm64"],
              expected: .incompatible("ARCHITECTURE=arm64 does not match host architecture x86-64")),

    // SYSEXT_SCOPE
    MatchCase(label: "initrd-only image on system", image: ["ID": "_any", "SYSEXT_SCOPE": "initrd"],
              expected: .incompatible("SYSEXT_SCOPE=initrd does not include host scope system")),
    MatchCase(label: "initrd-only image in initrd", image: ["ID": "_any", "SYSEXT_SCOPE": "initrd"], scope: .initrd,
              expected: .compatible),
    MatchCase(label: "default scope excludes initrd", image: ["ID": "_any"], scope: .initrd,
              expected: .incompatible("SYSEXT_SCOPE=system portable (the default) does not include host scope initrd")),
    MatchCase(label: "default scope includes portable", image: ["ID": "_any"], scope: .portable, expected: .compatible),
    MatchCase(label: "scope list", image: ["ID": "_any", "SYSEXT_SCOPE": "initrd system"], expected: .compatible),
    MatchCase(label: "scope list with tabs and extra blanks", image: ["ID": "_any", "SYSEXT_SCOPE": " initrd\t system "],
              scope: .initrd, expected: .compatible),
    MatchCase(label: "empty scope matches nothing", image: ["ID": "_any", "SYSEXT_SCOPE": ""],
              expected: .incompatible("SYSEXT_SCOPE=(empty) does not include host scope system")),
    MatchCase(label: "scope words are whole words", image: ["ID": "_any", "SYSEXT_SCOPE": "systems"],
              expected: .incompatible("SYSEXT_SCOPE=systems does not include host scope system")),
    MatchCase(label: "scope is checked before architecture", image: ["ID": "_any", "SYSEXT_SCOPE": "portable", "ARCHITECTURE": "arm64"],
              expected: .incompatible("SYSEXT_SCOPE=portable does not include host scope system")),
]

@Suite struct MatchingTests {
    @Test(arguments: matchCases)
    func matches(_ row: MatchCase) {
        let host = Host(osRelease: OSRelease(fields: row.host), scope: row.scope, architecture: "x86-64")
        #expect(matchExtension(name: "ext", release: OSRelease(fields: row.image), host: host) == row.expected)
    }

    @Test func tableIsLargeEnough() {
        #expect(matchCases.count >= 30)
    }

    @Test(arguments: [
        (["ID": "_any"], "ID=_any"),
        (["ID": "debian", "VERSION_ID": "12"], "ID=debian VERSION_ID=12 matches host"),
        (["ID": "debian", "SYSEXT_LEVEL": "1.0"], "ID=debian SYSEXT_LEVEL=1.0 matches host"),
    ])
    func explainsWhyCompatible(image: [String: String], basis: String) {
        let host = Host(osRelease: OSRelease(fields: ["ID": "debian", "VERSION_ID": "12", "SYSEXT_LEVEL": "1.0"]),
                        scope: .system, architecture: "x86-64")
        let (result, text) = explainMatch(release: OSRelease(fields: image), host: host)
        #expect(result == .compatible)
        #expect(text == basis)
    }

    @Test func explainsIDLikeAndRollingHost() {
        let ubuntu = Host(osRelease: OSRelease(fields: ["ID": "ubuntu", "ID_LIKE": "debian"]), scope: .system, architecture: "x86-64")
        let (result, text) = explainMatch(release: OSRelease(fields: ["ID": "debian"]), host: ubuntu)
        #expect(result == .compatible)
        #expect(text == "ID=debian (host ID_LIKE=debian) matches host, which has no VERSION_ID or SYSEXT_LEVEL")
    }

    @Test func incompatibleReasonsAreOneLine() {
        for row in matchCases {
            guard case .incompatible(let reason) = row.expected else { continue }
            #expect(!reason.contains("\n"))
        }
    }
}
