import Glibc
import Testing
@testable import EarlyextCore

@Suite struct PathResolutionTests {
    @Test func plainPath() throws {
        let fixture = try Fixture()
        try fixture.file("a/b/c")
        #expect(try resolveInsideRoot(root: fixture.root, path: "/a/b/c") == fixture.path("a/b/c"))
        #expect(try resolveInsideRoot(root: fixture.root, path: "a//./b/../b/c") == fixture.path("a/b/c"))
    }

    @Test func rootSlashGivesHostPaths() throws {
        // With root "/", the host path is the path itself.
        #expect(try resolveInsideRoot(root: "/", path: "/tmp") == "/tmp")
    }

    @Test func relativeLinkResolvesFromItsDirectory() throws {
        let fixture = try Fixture()
        try fixture.file("opt/images/x.raw")
        try fixture.link("etc/extensions/x.raw", to: "../../opt/images/x.raw")
        #expect(try resolveInsideRoot(root: fixture.root, path: "/etc/extensions/x.raw") == fixture.path("opt/images/x.raw"))
    }

    @Test func absoluteLinkIsTakenRelativeToTheRoot() throws {
        let fixture = try Fixture()
        try fixture.file("opt/images/x.raw")
        try fixture.link("etc/extensions/x.raw", to: "/opt/images/x.raw")
        #expect(try resolveInsideRoot(root: fixture.root, path: "/etc/extensions/x.raw") == fixture.path("opt/images/x.raw"))
    }

    @Test func intermediateDirectoryLinks() throws {
        let fixture = try Fixture()
        try fixture.file("real/etc/thing")
        try fixture.link("etc", to: "real/etc")
        try fixture.link("real/etc/alias", to: "./thing")
        #expect(try resolveInsideRoot(root: fixture.root, path: "/etc/alias") == fixture.path("real/etc/thing"))
    }

    @Test func dotDotInsideTheRootIsFine() throws {
        let fixture = try Fixture()
        try fixture.file("a/target")
        try fixture.link("a/b/link", to: "../../a/target")
        #expect(try resolveInsideRoot(root: fixture.root, path: "/a/b/link") == fixture.path("a/target"))
    }

    @Test func linkEscapingTheRootIsRefused() throws {
        let fixture = try Fixture()
        try fixture.directory("etc/extensions")
        try fixture.link("etc/extensions/x.raw", to: "../../../outside.raw")
        let error = try #require(throws: EarlyextError.self) {
            try resolveInsideRoot(root: fixture.root, path: "/etc/extensions/x.raw")
        }
        #expect(error.description == "symlink /etc/extensions/x.raw -> ../../../outside.raw escapes the root \(fixture.root)")
    }

    @Test func pathEscapingTheRootIsRefused() throws {
        let fixture = try Fixture()
        let error = try #require(throws: EarlyextError.self) { try resolveInsideRoot(root: fixture.root, path: "/../etc") }
        #expect(error.description.contains("leads above the root"))
    }

    @Test func loopIsRefused() throws {
        let fixture = try Fixture()
        try fixture.link("a", to: "b")
        try fixture.link("b", to: "/a")
        let error = try #require(throws: EarlyextError.self) { try resolveInsideRoot(root: fixture.root, path: "/a") }
        #expect(error.errno == .tooManyLinks)
        #expect(error.description.contains("more than 32 symlinks"))
    }

    @Test func thirtyTwoHopsAreAllowed() throws {
        let fixture = try Fixture()
        try fixture.file("end")
        try fixture.link("l32", to: "end")
        for n in stride(from: 31, through: 1, by: -1) { try fixture.link("l\(n)", to: "l\(n + 1)") }
        #expect(try resolveInsideRoot(root: fixture.root, path: "/l1") == fixture.path("end"))
        try fixture.link("l0", to: "l1")
        #expect(throws: EarlyextError.self) { try resolveInsideRoot(root: fixture.root, path: "/l0") }
    }

    @Test func missingComponentIsENOENT() throws {
        let fixture = try Fixture()
        try fixture.link("dangling", to: "/nowhere")
        let error = try #require(throws: EarlyextError.self) { try resolveInsideRoot(root: fixture.root, path: "/dangling") }
        #expect(error.errno == .noSuchFile)
    }

    @Test func fileInTheMiddleIsENOTDIR() throws {
        let fixture = try Fixture()
        try fixture.file("file")
        let error = try #require(throws: EarlyextError.self) { try resolveInsideRoot(root: fixture.root, path: "/file/x") }
        #expect(error.errno == .notDirectory)
    }

    /// The openat2(2) fast path gives exactly what the component walk gives (the same physical
    /// path, or the same failure and message), and declines (nil) whatever it cannot decide.
    @Test(arguments: [
        ("a/b/c", true), ("/a/b/c", true), ("a/./b/c", true), ("a/b", true), ("a/b/missing", true),
        ("a/missing/c", false), ("a/b/c/d", false), ("a/l/c", false), ("a/b/lc", false),
        ("a/b/../b/c", false), ("a", false), ("abs/x", false), ("a/dangling", false),
    ])
    func fastPathAgreesWithTheWalk(path: String, decidedFast: Bool) throws {
        let fixture = try Fixture()
        try fixture.file("a/b/c")
        try fixture.link("a/l", to: "b")
        try fixture.link("a/b/lc", to: "c")
        try fixture.link("abs", to: "/a/b")
        try fixture.link("a/dangling", to: "nowhere")
        let root = try openRoot(fixture.root)
        func outcome(_ body: () throws(ResolveFailure) -> ResolvedPath?) -> String {
            do {
                guard let resolved = try body() else { return "undecided" }
                return "ok " + resolved.path + (resolved.isDirectory ? "/" : "")
            } catch { return "error \(error.reason)" }
        }
        let fast = outcome { () throws(ResolveFailure) in try resolveDirectly(inside: root.rawValue, path) }
        let walk = outcome { () throws(ResolveFailure) in try resolveByWalking(inside: root.rawValue, path, rootName: "the root") }
        #expect((fast != "undecided") == decidedFast, "\(path): fast path said \(fast)")
        if fast != "undecided" { #expect(fast == walk, "\(path)") }
        #expect(outcome { () throws(ResolveFailure) in try resolve(inside: root.rawValue, path, rootName: "the root") } == walk)
    }
}
