import Glibc
import Testing
@testable import EarlyextCore

private let releaseDir = "img/usr/lib/extension-release.d"

/// Reads the release of the image at `img/` in the fixture.
private func lookup(_ fixture: Fixture, _ name: String) throws -> ReleaseLookup {
    let image = try fixture.open("img")
    return readExtensionRelease(imageRoot: image.rawValue, name: name)
}

/// Sets the strict xattr, or records why the file system would not (then the caller skips).
private func setStrict(_ fixture: Fixture, _ path: String, _ value: String) -> Bool {
    if let errno = fixture.setAttribute(path, "user.extension-release.strict", value) {
        print("skipping: user xattrs are not supported on \(fixture.root): \(errno)")
        return false
    }
    return true
}

@Suite struct ExtensionReleaseTests {
    @Test func exactName() throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.foo", releaseText(["ID": "debian", "VERSION_ID": "12"]))
        try fixture.file("\(releaseDir)/extension-release.bar", releaseText(["ID": "other"]))
        guard case .found(let release, let file) = try lookup(fixture, "foo") else {
            Issue.record("expected found"); return
        }
        #expect(release["ID"] == "debian")
        #expect(release["VERSION_ID"] == "12")
        #expect(file == "/usr/lib/extension-release.d/extension-release.foo")
    }

    @Test func sysextSuffixedImageUsesTheStrippedName() throws {
        // foo.sysext.raw is the extension "foo": its file is extension-release.foo.
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.foo", releaseText(["ID": "_any"]))
        try fixture.directory("root/etc/extensions")
        try fixture.file("root/etc/extensions/foo.sysext.raw")
        let name = try #require(try discoverExtensions(root: fixture.path("root")).candidates.first?.name)
        #expect(name == "foo")
        guard case .found(let release, _) = try lookup(fixture, name) else { Issue.record("expected found"); return }
        #expect(release["ID"] == "_any")
        // …and the unstripped name has no file of its own.
        guard case .missing = try lookup(fixture, "foo.sysext") else { Issue.record("expected missing"); return }
    }

    @Test func missingDirectory() throws {
        let fixture = try Fixture()
        try fixture.directory("img/usr/bin")
        guard case .missing(let reason) = try lookup(fixture, "foo") else { Issue.record("expected missing"); return }
        #expect(reason.hasPrefix("no extension-release file"))
        #expect(reason.contains("extension-release.foo"))
    }

    @Test(arguments: ["false", "0", "no", "off", "NO", "False", "n", "f", "false\0"])
    func strictFalseFallback(value: String) throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.original", releaseText(["ID": "_any", "VERSION_ID": "fallback"]))
        guard setStrict(fixture, "\(releaseDir)/extension-release.original", value) else { return }
        guard case .found(let release, let file) = try lookup(fixture, "renamed") else {
            Issue.record("expected found"); return
        }
        #expect(release["VERSION_ID"] == "fallback")
        #expect(file == "/usr/lib/extension-release.d/extension-release.original")
    }

    @Test(arguments: ["true", "1", "yes", "on", "maybe", ""])
    func strictNotFalseIsNoFallback(value: String) throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.original", releaseText(["ID": "_any"]))
        guard setStrict(fixture, "\(releaseDir)/extension-release.original", value) else { return }
        guard case .missing(let reason) = try lookup(fixture, "renamed") else { Issue.record("expected missing"); return }
        #expect(reason.contains("no other extension-release file has user.extension-release.strict=false"))
    }

    @Test func noXattrIsNoFallback() throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.original", releaseText(["ID": "_any"]))
        guard case .missing = try lookup(fixture, "renamed") else { Issue.record("expected missing"); return }
    }

    @Test func twoRelaxedCandidatesAreAmbiguous() throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.one", releaseText(["ID": "_any"]))
        try fixture.file("\(releaseDir)/extension-release.two", releaseText(["ID": "_any"]))
        guard setStrict(fixture, "\(releaseDir)/extension-release.one", "0"),
              setStrict(fixture, "\(releaseDir)/extension-release.two", "false") else { return }
        guard case .missing(let reason) = try lookup(fixture, "renamed") else { Issue.record("expected missing"); return }
        #expect(reason.contains("ambiguous: extension-release.one, extension-release.two"))
    }

    @Test func onlyRelaxedFilesCount() throws {
        // As in systemd: files without the xattr (or with strict=true) are passed over, so one
        // relaxed file next to them is still unique.
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.plain", releaseText(["ID": "plain"]))
        try fixture.file("\(releaseDir)/extension-release.strict", releaseText(["ID": "strict"]))
        try fixture.file("\(releaseDir)/extension-release.relaxed", releaseText(["ID": "relaxed"]))
        guard setStrict(fixture, "\(releaseDir)/extension-release.strict", "yes"),
              setStrict(fixture, "\(releaseDir)/extension-release.relaxed", "no") else { return }
        guard case .found(let release, _) = try lookup(fixture, "renamed") else { Issue.record("expected found"); return }
        #expect(release["ID"] == "relaxed")
    }

    @Test func fallbackIgnoresOtherNamesAndInvalidSuffixes() throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/os-release-like", releaseText(["ID": "nope"]))
        try fixture.file("\(releaseDir)/extension-release.", releaseText(["ID": "nope"]))
        guard setStrict(fixture, "\(releaseDir)/os-release-like", "false"),
              setStrict(fixture, "\(releaseDir)/extension-release.", "false") else { return }
        guard case .missing = try lookup(fixture, "renamed") else { Issue.record("expected missing"); return }
    }

    @Test func exactNameWinsOverRelaxedFile() throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.foo", releaseText(["ID": "exact"]))
        try fixture.file("\(releaseDir)/extension-release.other", releaseText(["ID": "relaxed"]))
        guard setStrict(fixture, "\(releaseDir)/extension-release.other", "false") else { return }
        guard case .found(let release, _) = try lookup(fixture, "foo") else { Issue.record("expected found"); return }
        #expect(release["ID"] == "exact")
    }

    @Test func osReleaseInImageIsRefused() throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.foo", releaseText(["ID": "_any"]))
        try fixture.file("img/usr/lib/os-release", releaseText(["ID": "debian"]))
        guard case .refused(let reason) = try lookup(fixture, "foo") else { Issue.record("expected refused"); return }
        #expect(reason == "image contains /usr/lib/os-release; an extension must not carry an OS identity")
    }

    @Test func osReleaseSymlinkInImageIsRefused() throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.foo", releaseText(["ID": "_any"]))
        try fixture.file("img/usr/share/identity", "ID=x\n")
        try fixture.link("img/usr/lib/os-release", to: "../share/identity")
        guard case .refused = try lookup(fixture, "foo") else { Issue.record("expected refused"); return }
    }

    @Test func etcOsReleaseInImageIsFine() throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.foo", releaseText(["ID": "_any"]))
        try fixture.file("img/etc/os-release", releaseText(["ID": "debian"]))
        guard case .found = try lookup(fixture, "foo") else { Issue.record("expected found"); return }
    }

    @Test func releaseSymlinkEscapingTheImageIsRefused() throws {
        let fixture = try Fixture()
        try fixture.file("outside/release", releaseText(["ID": "_any"]))
        try fixture.link("\(releaseDir)/extension-release.foo", to: "../../../../../outside/release")
        guard case .refused(let reason) = try lookup(fixture, "foo") else { Issue.record("expected refused"); return }
        #expect(reason.contains("escapes the image"))
        #expect(reason.contains("/usr/lib/extension-release.d/extension-release.foo -> ../../../../../outside/release"))
    }

    @Test func absoluteReleaseSymlinkStaysInTheImage() throws {
        // "/usr/share/rel" is the image's file, not the host's (nor the fixture's).
        let fixture = try Fixture()
        try fixture.file("img/usr/share/rel", releaseText(["ID": "inimage"]))
        try fixture.file("usr/share/rel", releaseText(["ID": "outside"]))
        try fixture.link("\(releaseDir)/extension-release.foo", to: "/usr/share/rel")
        guard case .found(let release, let file) = try lookup(fixture, "foo") else { Issue.record("expected found"); return }
        #expect(release["ID"] == "inimage")
        #expect(file == "/usr/share/rel")
    }

    @Test func releaseDirectoryIsRefused() throws {
        let fixture = try Fixture()
        try fixture.directory("\(releaseDir)/extension-release.foo")
        guard case .refused(let reason) = try lookup(fixture, "foo") else { Issue.record("expected refused"); return }
        #expect(reason.contains("not a regular file"))
    }

    @Test func oversizedReleaseIsRefused() throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.foo", "ID=_any\n" + String(repeating: "#", count: 70_000))
        guard case .refused(let reason) = try lookup(fixture, "foo") else { Issue.record("expected refused"); return }
        #expect(reason.contains("larger than 64 KiB"))
    }

    @Test(arguments: ["", "../etc", "a/b", ".#tmp", "bad\u{7}"])
    func invalidNamesAreRefused(name: String) throws {
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.foo", releaseText(["ID": "_any"]))
        guard case .refused = try lookup(fixture, name) else { Issue.record("expected refused"); return }
    }
}

@Suite struct HierarchyTests {
    private func present(_ fixture: Fixture) throws -> [String] {
        let image = try fixture.open("img")
        return hierarchiesPresent(imageRoot: image.rawValue)
    }

    @Test func usrOnly() throws {
        let fixture = try Fixture()
        try fixture.file("img/usr/bin/tool")
        #expect(try present(fixture) == ["/usr"])
    }

    @Test func both() throws {
        let fixture = try Fixture()
        try fixture.file("img/usr/bin/tool")
        try fixture.file("img/opt/vendor/tool")
        #expect(try present(fixture) == ["/usr", "/opt"])
    }

    @Test func emptyOrMissingHierarchiesAreLeftOut() throws {
        let fixture = try Fixture()
        try fixture.directory("img/usr")
        try fixture.directory("img/etc")
        #expect(try present(fixture) == [])
    }

    @Test func hiddenEntriesCount() throws {
        // systemd: dir_is_empty(…, ignore_hidden_or_backup=false).
        let fixture = try Fixture()
        try fixture.file("img/opt/.keep")
        #expect(try present(fixture) == ["/opt"])
    }

    @Test func usrWithOnlyTheReleaseFileCounts() throws {
        // systemd-sysext checks /usr with plain dir_is_empty(); the release file makes it non-empty.
        let fixture = try Fixture()
        try fixture.file("\(releaseDir)/extension-release.foo", releaseText(["ID": "_any"]))
        try fixture.file("img/opt/app/run")
        #expect(try present(fixture) == ["/usr", "/opt"])
    }

    @Test func hierarchyThatIsAFileIsLeftOut() throws {
        let fixture = try Fixture()
        try fixture.file("img/opt")
        try fixture.file("img/usr/x")
        #expect(try present(fixture) == ["/usr"])
    }

    @Test func symlinkedHierarchyResolvesInsideTheImage() throws {
        let fixture = try Fixture()
        try fixture.file("img/real-opt/app")
        try fixture.link("img/opt", to: "/real-opt")
        try fixture.file("outside/app")
        try fixture.link("img/usr", to: "../outside")
        #expect(try present(fixture) == ["/opt"])
    }
}
