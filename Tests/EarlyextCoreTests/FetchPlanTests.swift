import Foundation
import Glibc
import Testing
@testable import EarlyextCore

/// A root with a bakery-style transfer, and a served repository listing several versions and arches.
final class PlanScene {
    let root: Fixture
    let served: Fixture
    let server: TestServer
    let log = Log(level: .error)
    let host = Host(osRelease: OSRelease(fields: ["ID": "flatcar", "VERSION_ID": "4152.2.0"]), scope: .system, architecture: "x86-64")
    var images: [String: [UInt8]] = [:]

    static let names = ["kubernetes-v1.29.0-x86-64.raw", "kubernetes-v1.30.0-x86-64.raw", "kubernetes-v1.31.0-x86-64.raw",
                        "kubernetes-v1.32.0-arm64.raw", "docker-27.0-x86-64.raw"]

    init(verify: Bool = false, pattern: String = "kubernetes-@v-%a.raw") throws {
        root = try Fixture()
        served = try Fixture()
        var sums = ""
        for name in Self.names {
            let bytes = randomBytes(64 * 1024 + name.count)
            images[name] = bytes
            try writeBytes(served.path("repo/\(name)"), bytes)
            sums += "\(SHA256.hexDigest(of: bytes))  \(name)\n"
        }
        sums += "this line is broken\n"
        try writeBytes(served.path("repo/SHA256SUMS"), Array(sums.utf8))
        server = try TestServer(root: served.root)
        try root.file("etc/os-release", "ID=flatcar\nVERSION_ID=4152.2.0\n")
        try root.file("etc/sysupdate.kubernetes.d/kubernetes.conf", """
            [Transfer]
            Verify=\(verify ? "true" : "false")
            [Source]
            Type=url-file
            Path=\(server.url("ok", "repo/"))
            MatchPattern=\(pattern)
            [Target]
            InstancesMax=3
            Type=regular-file
            Path=/opt/extensions/kubernetes
            CurrentSymlink=/etc/extensions/kubernetes.raw
            """)
    }

    func options(offline: Bool = false) -> FetchOptions {
        var options = FetchOptions()
        options.connectTimeout = 2
        options.stallTimeout = 1
        options.retries = 0
        options.offline = offline
        return options
    }

    func plan(update: Bool = false, offline: Bool = false) throws -> FetchPlan {
        try planFetches(root: root.root, update: update, host: host, log: log, options: options(offline: offline))
    }

    func install(_ name: String) throws {
        try writeBytes(root.path("opt/extensions/kubernetes/\(name)"), images[name]!)
        try? unlinkAt(AT_FDCWD, root.path("etc/extensions/kubernetes.raw"))
        try root.link("etc/extensions/kubernetes.raw", to: "../../opt/extensions/kubernetes/\(name)")
    }
}

@Suite(.serialized)
struct FetchPlanTests {
    @Test func transferTakesTheNewestForThisArchitecture() throws {
        let scene = try PlanScene()
        let plan = try scene.plan()
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        try #require(plan.requests.count == 1)
        let request = plan.requests[0]
        let newest = "kubernetes-v1.31.0-x86-64.raw"
        #expect(request.name == "kubernetes")
        #expect(request.url == scene.server.url("ok", "repo/\(newest)"))
        #expect(request.sha256 == SHA256.hexDigest(of: scene.images[newest]!))
        #expect(request.destination == scene.root.path("opt/extensions/kubernetes/\(newest)"))
        #expect(request.currentSymlink == scene.root.path("etc/extensions/kubernetes.raw"))
        #expect(request.version == "v1.31.0" && request.instancesMax == 3 && request.required == false)
        #expect(request.source == "/etc/sysupdate.kubernetes.d/kubernetes.conf")
        #expect(plan.warnings.contains { $0.contains("SHA256SUMS:6:") && $0.contains("line skipped") }, "\(plan.warnings)")

        // Fetch it: the symlink appears and discovery sees the extension through it.
        _ = try Fetcher(log: scene.log, options: scene.options()).fetch(request)
        let discovery = try discoverExtensions(root: scene.root.root)
        #expect(discovery.candidates.map(\.name) == ["kubernetes"])
        #expect(discovery.candidates.first?.resolvedPath == request.destination)
        // And now nothing more is needed, without touching the network.
        let before = try scene.server.requests().count
        let again = try scene.plan()
        #expect(again.requests.isEmpty && again.satisfied == ["kubernetes"])
        #expect(try scene.server.requests().count == before)
    }

    @Test func installedInstanceMeansNoNetwork() throws {
        let scene = try PlanScene()
        try scene.install("kubernetes-v1.29.0-x86-64.raw")
        let plan = try scene.plan()
        #expect(plan.requests.isEmpty)
        #expect(plan.satisfied == ["kubernetes"])
        #expect(try scene.server.requests().isEmpty, "no request at all")
    }

    @Test func updateTakesNewerVersionsOnly() throws {
        let scene = try PlanScene()
        try scene.install("kubernetes-v1.30.0-x86-64.raw")
        let plan = try scene.plan(update: true)
        #expect(plan.requests.map(\.version) == ["v1.31.0"])
        #expect(try scene.server.requests() == ["GET /ok/repo/SHA256SUMS - DIRECT"])

        try scene.install("kubernetes-v1.31.0-x86-64.raw")
        let current = try scene.plan(update: true)
        #expect(current.requests.isEmpty && current.satisfied == ["kubernetes"])
    }

    @Test func noMatchingEntryIsAProblem() throws {
        let scene = try PlanScene(pattern: "containerd-@v-%a.raw")
        let plan = try scene.plan()
        #expect(plan.requests.isEmpty)
        #expect(plan.problems.count == 1)
        #expect(plan.problems.first?.contains("matches MatchPattern=containerd-@v-x86-64.raw") == true, "\(plan.problems)")
        #expect(plan.problems.first?.contains("/etc/sysupdate.kubernetes.d/kubernetes.conf") == true)
        #expect(plan.blocking.isEmpty)
    }

    @Test func missingManifestIsAProblem() throws {
        let scene = try PlanScene()
        try unlinkAt(AT_FDCWD, scene.served.path("repo/SHA256SUMS"))
        let plan = try scene.plan()
        #expect(plan.problems.first?.contains(scene.server.url("ok", "repo/SHA256SUMS")) == true, "\(plan.problems)")
        #expect(plan.problems.first?.contains("HTTP 404") == true)
    }

    @Test func offlineNeedsTheListing() throws {
        let scene = try PlanScene()
        let plan = try scene.plan(offline: true)
        #expect(plan.requests.isEmpty)
        #expect(plan.problems.first?.contains("offline") == true, "\(plan.problems)")
        #expect(try scene.server.requests().isEmpty)
    }

    @Test func signedManifest() throws {
        let scene = try PlanScene(verify: true)
        let gnupg = try Fixture()
        let keyring = scene.root.path("etc/systemd/import-pubring.gpg")
        try makeDirectories(scene.root.path("etc/systemd"))
        let made = try runShell("""
        set -e
        export GNUPGHOME='\(gnupg.root)'; chmod 700 "$GNUPGHOME"
        gpg --batch --passphrase '' --quick-gen-key 'earlyext test <test@example.org>' ed25519 sign 1d
        gpg --batch --export > '\(keyring)'
        gpg --batch --detach-sign -o '\(scene.served.path("repo/SHA256SUMS.gpg"))' '\(scene.served.path("repo/SHA256SUMS"))'
        """)
        try #require(made.status == 0, "gpg: \(made.output)")
        let plan = try scene.plan()
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        #expect(plan.requests.map(\.version) == ["v1.31.0"])

        // A manifest changed after signing is refused.
        var sums = readBytes(scene.served.path("repo/SHA256SUMS"))!
        sums += Array("\(String(repeating: "0", count: 64))  kubernetes-v9.0.0-x86-64.raw\n".utf8)
        try writeBytes(scene.served.path("repo/SHA256SUMS"), sums)
        let tampered = try scene.plan()
        #expect(tampered.requests.isEmpty)
        #expect(tampered.problems.first?.contains("does not verify") == true, "\(tampered.problems)")

        // No signature at all.
        try unlinkAt(AT_FDCWD, scene.served.path("repo/SHA256SUMS.gpg"))
        let unsigned = try scene.plan()
        #expect(unsigned.problems.first?.contains("SHA256SUMS.gpg: HTTP 404") == true, "\(unsigned.problems)")
    }

    @Test func selections() throws {
        let scene = try PlanScene()
        try unlinkAt(AT_FDCWD, scene.root.path("etc/sysupdate.kubernetes.d/kubernetes.conf"))
        let image = scene.images["docker-27.0-x86-64.raw"]!
        let digest = SHA256.hexDigest(of: image)
        try scene.root.file("etc/earlyext/select.d/docker.conf", """
            [Extension]
            Name=docker
            Url=\(scene.server.url("ok", "repo/docker-27.0-x86-64.raw"))
            SHA256=\(digest)
            Required=yes
            """)
        try scene.root.file("etc/earlyext/select.d/broken.conf", "[Extension]\nName=broken\nUrl=https://x/b.raw\nRequired=yes\n")
        let plan = try scene.plan()
        #expect(plan.requests.map(\.name) == ["docker"])
        #expect(plan.requests.first?.destination == scene.root.path("etc/extensions/docker.raw"))
        #expect(plan.requests.first?.required == true)
        #expect(plan.blocking.count == 1 && plan.blocking.first?.contains("broken.conf") == true, "\(plan.blocking)")
        _ = try Fetcher(log: scene.log, options: scene.options()).fetch(plan.requests[0])

        let present = try scene.plan()
        #expect(present.requests.isEmpty && present.satisfied == ["docker"])
        // --update: same digest, nothing to do; another digest, fetched again.
        #expect(try scene.plan(update: true).requests.isEmpty)
        try scene.root.file("etc/earlyext/select.d/docker.conf", """
            [Extension]
            Name=docker
            Url=\(scene.server.url("ok", "repo/docker-27.0-x86-64.raw"))
            SHA256=\(String(repeating: "1", count: 64))
            """)
        #expect(try scene.plan().requests.isEmpty, "without --update a present image is kept")
        #expect(try scene.plan(update: true).requests.map(\.name) == ["docker"])
    }

    @Test func aSelectionWinsOverATransferForTheSamePath() throws {
        let scene = try PlanScene()
        try scene.root.file("etc/earlyext/select.d/kubernetes.conf",
                            "[Extension]\nName=kubernetes\nUrl=file://\(scene.served.path("repo/kubernetes-v1.29.0-x86-64.raw"))\n")
        let plan = try scene.plan()
        #expect(plan.requests.map(\.source) == ["/etc/earlyext/select.d/kubernetes.conf"])
        #expect(plan.problems.first?.contains("already provided by the selection") == true, "\(plan.problems)")
    }
}
