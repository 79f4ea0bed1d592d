import Glibc
import Testing
@testable import EarlyextCore

private func candidate(_ fixture: Fixture, _ name: String, _ entry: String, resolved: String? = nil, kind: EntryKind = .raw) -> Candidate {
    let dir = String(entry[..<entry.lastIndex(of: "/")!])
    return Candidate(name: name, searchDir: dir, entryPath: entry,
                     resolvedPath: fixture.root + (resolved ?? entry), kind: kind)
}

@Suite struct DiscoveryTests {
    @Test func missingSearchDirsAreFine() throws {
        let fixture = try Fixture()
        #expect(try discoverExtensions(root: fixture.root) == DiscoveryResult())
    }

    @Test func missingRootIsAnError() throws {
        let fixture = try Fixture()
        #expect(throws: EarlyextError.self) { try discoverExtensions(root: fixture.path("absent")) }
    }

    @Test func precedenceEtcOverRunOverVarLib() throws {
        let fixture = try Fixture()
        try fixture.file("etc/extensions/foo.raw")
        try fixture.file("run/extensions/foo.raw")
        try fixture.file("var/lib/extensions/foo.raw")
        try fixture.file("run/extensions/bar.raw")
        try fixture.file("var/lib/extensions/bar.raw")
        try fixture.file("var/lib/extensions/baz.raw")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.candidates == [
            candidate(fixture, "bar", "/run/extensions/bar.raw"),
            candidate(fixture, "baz", "/var/lib/extensions/baz.raw"),
            candidate(fixture, "foo", "/etc/extensions/foo.raw"),
        ])
        #expect(result.shadowed == [
            candidate(fixture, "foo", "/run/extensions/foo.raw"),
            candidate(fixture, "bar", "/var/lib/extensions/bar.raw"),
            candidate(fixture, "foo", "/var/lib/extensions/foo.raw"),
        ])
        #expect(result.masked.isEmpty)
        #expect(result.skipped.isEmpty)
    }

    @Test func customSearchDirsKeepTheirOrder() throws {
        let fixture = try Fixture()
        try fixture.file("var/lib/extensions/foo.raw")
        try fixture.file("etc/extensions/foo.raw")
        let result = try discoverExtensions(root: fixture.root, searchDirs: ["/var/lib/extensions", "/etc/extensions"])
        #expect(result.candidates == [candidate(fixture, "foo", "/var/lib/extensions/foo.raw")])
        #expect(result.shadowed == [candidate(fixture, "foo", "/etc/extensions/foo.raw")])
    }

    @Test func emptyDirectoryMasks() throws {
        let fixture = try Fixture()
        try fixture.directory("etc/extensions/foo")
        try fixture.file("var/lib/extensions/foo.raw")
        try fixture.file("var/lib/extensions/bar.raw")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.masked == [Masked(name: "foo", searchDir: "/etc/extensions", entryPath: "/etc/extensions/foo")])
        #expect(result.candidates.map(\.name) == ["bar"])
        #expect(result.shadowed.map(\.entryPath) == ["/var/lib/extensions/foo.raw"])
    }

    @Test(arguments: ["foo.raw", "foo", "foo.sysext.raw"])
    func devNullSymlinkMasks(linkName: String) throws {
        let fixture = try Fixture()
        try fixture.link("run/extensions/\(linkName)", to: "/dev/null")
        try fixture.file("var/lib/extensions/foo.raw")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.masked == [Masked(name: "foo", searchDir: "/run/extensions", entryPath: "/run/extensions/\(linkName)")])
        #expect(result.candidates.isEmpty)
    }

    @Test func devNullIsJudgedByTheTargetText() throws {
        // The fixture root has no dev/null; the mask works anyway, like systemd's check of the link.
        let fixture = try Fixture()
        try fixture.link("etc/extensions/foo.raw", to: "//dev/./null")
        #expect(try discoverExtensions(root: fixture.root).masked.map(\.name) == ["foo"])
    }

    @Test func maskInLowerDirDoesNothing() throws {
        let fixture = try Fixture()
        try fixture.file("etc/extensions/foo.raw")
        try fixture.link("var/lib/extensions/foo.raw", to: "/dev/null")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.candidates.map(\.entryPath) == ["/etc/extensions/foo.raw"])
        #expect(result.masked.isEmpty)
    }

    @Test func maskWinsWithinItsDirectory() throws {
        let fixture = try Fixture()
        try fixture.file("etc/extensions/foo.raw")
        try fixture.link("etc/extensions/foo", to: "/dev/null")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.masked.map(\.entryPath) == ["/etc/extensions/foo"])
        #expect(result.shadowed.map(\.entryPath) == ["/etc/extensions/foo.raw"])
    }

    @Test func sameNameInOneDirectoryFirstFileNameWins() throws {
        let fixture = try Fixture()
        try fixture.file("etc/extensions/foo.raw")
        try fixture.file("etc/extensions/foo.sysext.raw")
        try fixture.file("etc/extensions/foo/usr/bin/x")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.candidates == [candidate(fixture, "foo", "/etc/extensions/foo", kind: .directory)])
        #expect(result.shadowed.map(\.entryPath) == ["/etc/extensions/foo.raw", "/etc/extensions/foo.sysext.raw"])
    }

    @Test func namesAndKinds() throws {
        let fixture = try Fixture()
        try fixture.file("etc/extensions/plain.raw")
        try fixture.file("etc/extensions/suffixed.sysext.raw")
        try fixture.file("etc/extensions/tree/usr/bin/x")
        try fixture.file("etc/extensions/classdir.sysext/opt/x")
        try fixture.file("etc/extensions/dotted.v1.2.raw")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.candidates == [
            candidate(fixture, "classdir", "/etc/extensions/classdir.sysext", kind: .directory),
            candidate(fixture, "dotted.v1.2", "/etc/extensions/dotted.v1.2.raw"),
            candidate(fixture, "plain", "/etc/extensions/plain.raw"),
            candidate(fixture, "suffixed", "/etc/extensions/suffixed.sysext.raw"),
            candidate(fixture, "tree", "/etc/extensions/tree", kind: .directory),
        ])
    }

    /// systemd treats `.name.raw` as an image named `.name`; only `.#` temporary files are ignored,
    /// and files that are not `.raw` are not images.
    @Test func dotEntriesAreImagesButTemporaryAndNonRawFilesAreNot() throws {
        let fixture = try Fixture()
        try fixture.file("etc/extensions/.hidden.raw")
        try fixture.file("etc/extensions/.hiddendir/usr/x")
        try fixture.file("etc/extensions/.#foo.raw.tmp1234")
        try fixture.file("etc/extensions/.#bar.raw")
        try fixture.file("etc/extensions/notes.txt")
        try fixture.file("etc/extensions/foo.roothash")
        try fixture.file("etc/extensions/foo.raw.sig")
        try fixture.file("etc/extensions/foo.raw")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.candidates.map(\.entryPath).sorted() ==
                ["/etc/extensions/.hidden.raw", "/etc/extensions/.hiddendir", "/etc/extensions/foo.raw"])
        #expect(result.candidates.first { $0.entryPath.hasSuffix(".hidden.raw") }?.name == ".hidden")
        #expect(result.masked.isEmpty)
        #expect(result.skipped.isEmpty)
    }

    @Test func invalidNamesAreSkipped() throws {
        let fixture = try Fixture()
        try fixture.file("etc/extensions/bad\u{1}name.raw")
        try fixture.file("etc/extensions/.sysext.raw")   // the name would be empty
        try fixture.file("etc/extensions/good.raw")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.skipped.map(\.entryPath) == ["/etc/extensions/.sysext.raw", "/etc/extensions/bad\u{1}name.raw"])
        #expect(result.candidates.map(\.name) == ["good"])
    }

    @Test func searchDirThatIsAFileIsSkipped() throws {
        let fixture = try Fixture()
        try fixture.file("etc/extensions")
        try fixture.file("run/extensions/foo.raw")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.skipped == [Skipped(entryPath: "/etc/extensions", reason: "search dir is not a directory")])
        #expect(result.candidates.map(\.name) == ["foo"])
    }

    @Test func blockDevice() throws {
        guard geteuid() == 0 else {
            print("skipping blockDevice: mknod needs root")
            return
        }
        let fixture = try Fixture()
        try fixture.directory("etc/extensions")
        // loop0 is 7:0; dev_t packs major 7 as 7 << 8 for small numbers.
        guard mknod(fixture.path("etc/extensions/blockext"), S_IFBLK | 0o600, 7 << 8) == 0 else {
            print("skipping blockDevice: mknod failed: \(Errno.current)")
            return
        }
        try fixture.link("var/lib/extensions/linkedblock", to: "/etc/extensions/blockext")
        let result = try discoverExtensions(root: fixture.root)
        #expect(result.candidates == [
            candidate(fixture, "blockext", "/etc/extensions/blockext", kind: .block),
            candidate(fixture, "linkedblock", "/var/lib/extensions/linkedblock", resolved: "/etc/extensions/blockext", kind: .block),
        ])
    }

    @Test func rootWithTrailingSlash() throws {
        let fixture = try Fixture()
        try fixture.file("etc/extensions/foo.raw")
        let result = try discoverExtensions(root: fixture.root + "/")
        #expect(result.candidates.first?.resolvedPath == fixture.root + "/etc/extensions/foo.raw")
    }
}
