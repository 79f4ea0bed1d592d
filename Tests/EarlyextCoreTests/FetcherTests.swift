import Foundation
import Glibc
import Testing
@testable import EarlyextCore

/// A served directory with one image, a target root, and a server.
final class FetchScene {
    let served: Fixture
    let target: Fixture
    let image: [UInt8]
    let digest: String
    var server: TestServer
    let log = Log(level: .error)

    init(size: Int = 3 << 20, tls: (cert: String, key: String)? = nil) throws {
        served = try Fixture()
        target = try Fixture()
        image = randomBytes(size)
        digest = SHA256.hexDigest(of: image)
        try writeBytes(served.path("img.raw"), image)
        server = try TestServer(root: served.root, tls: tls)
    }

    /// Short timeouts and backoff, for tests.
    func options(retries: Int = 2) -> FetchOptions {
        var options = FetchOptions()
        options.connectTimeout = 2
        options.stallTimeout = 1
        options.retries = retries
        options.retryDelay = 0.1
        options.maxRetryDelay = 0.4
        return options
    }

    var destination: String { target.path("etc/extensions/img.raw") }

    func request(_ mode: String, sha256: String? = nil) -> FetchRequest {
        FetchRequest(name: "img", url: server.url(mode, "img.raw"), sha256: sha256 ?? digest, destination: destination,
                     required: false, source: "/etc/earlyext/select.d/img.conf")
    }

    /// An older image at the destination, that a failed fetch must leave alone.
    func installOld() throws -> [UInt8] {
        let old = Array("old image\n".utf8)
        try writeBytes(destination, old)
        return old
    }

    /// The partial files left in the destination dir.
    var partials: [String] { listDirectory(target.path("etc/extensions")).filter { $0.hasSuffix(".partial") } }

    func fetch(_ request: FetchRequest, retries: Int = 2) -> Result<FetchResult, EarlyextError> {
        Result { try Fetcher(log: log, options: options(retries: retries)).fetch(request) }.mapError { $0 as! EarlyextError }
    }
}

@Suite(.serialized)
struct FetcherTests {
    @Test func downloadsVerifiesAndInstalls() throws {
        let scene = try FetchScene()
        let result = try scene.fetch(scene.request("ok")).get()
        #expect(digestOfFile(scene.destination) == scene.digest)
        #expect(result.sha256 == scene.digest)
        #expect(result.bytes == Int64(scene.image.count) && result.downloaded == result.bytes)
        #expect(result.resumedFrom == 0 && result.attempts == 1)
        #expect(result.destination == scene.destination)
        #expect(scene.partials.isEmpty)
        let status = try statAt(AT_FDCWD, scene.destination)
        #expect(status.st_mode & 0o7777 == 0o644)
        let installed = try openPath(scene.destination, O_RDONLY)
        let attribute = try extendedAttribute(installed.rawValue, digestAttribute)
        #expect(attribute.map { String(decoding: $0, as: UTF8.self) } == scene.digest || attribute == nil)
    }

    @Test func followsRedirectsUpToTheLimit() throws {
        let scene = try FetchScene(size: 4096)
        _ = try scene.fetch(scene.request("redirect/3")).get()
        #expect(digestOfFile(scene.destination) == scene.digest)

        try? unlinkAt(AT_FDCWD, scene.destination)
        var options = scene.options()
        options.maxRedirects = 2
        let failure = Result { try Fetcher(log: scene.log, options: options).fetch(scene.request("redirect/5")) }
        guard case .failure(let error) = failure else { Issue.record("too many redirects succeeded"); return }
        #expect("\(error)".contains(scene.server.url("redirect/5", "img.raw")))
        #expect("\(error)".lowercased().contains("redirect"), "\(error)")
        #expect(readBytes(scene.destination) == nil)
    }

    @Test(arguments: [("status/404", "HTTP 404 Not Found", 1), ("status/403", "HTTP 403 Forbidden", 1),
                      ("status/500", "HTTP 500 Internal Server Error", 3), ("status/503", "HTTP 503", 3)])
    func httpErrorsKeepTheOldImage(_ mode: String, _ reason: String, _ attempts: Int) throws {
        let scene = try FetchScene(size: 4096)
        let old = try scene.installOld()
        let result = scene.fetch(scene.request(mode))
        guard case .failure(let error) = result else { Issue.record("\(mode) succeeded"); return }
        #expect(error.description.contains(scene.server.url(mode, "img.raw")), "\(error)")
        #expect(error.description.contains(reason), "\(error)")
        #expect(error.code == .fetch)
        #expect(readBytes(scene.destination) == old)
        #expect(scene.partials.isEmpty, "a 4xx/5xx leaves no partial file: \(scene.partials)")
        let requests = try scene.server.requests()
        #expect(requests.count == attempts, "5xx is retried, 4xx is not: \(requests)")
    }

    @Test func retriesUntilTheServerRecovers() throws {
        let scene = try FetchScene(size: 4096)
        let result = try scene.fetch(scene.request("flaky/2"), retries: 2).get()
        #expect(result.attempts == 3)
        #expect(digestOfFile(scene.destination) == scene.digest)
    }

    @Test func truncatedBodyNeverReachesTheFinalName() throws {
        let scene = try FetchScene(size: 1 << 20)
        let old = try scene.installOld()
        let result = scene.fetch(scene.request("truncate"), retries: 1)
        guard case .failure(let error) = result else { Issue.record("a truncated body was accepted"); return }
        #expect(error.description.contains(scene.server.url("truncate", "img.raw")), "\(error)")
        #expect(error.description.contains("after 2 attempts"), "\(error)")
        #expect(error.description.contains("bytes remaining") || error.description.contains("truncated"), "\(error)")
        #expect(readBytes(scene.destination) == old)
    }

    @Test func digestMismatchIsDiscarded() throws {
        let scene = try FetchScene(size: 1 << 20)
        let old = try scene.installOld()
        let result = scene.fetch(scene.request("corrupt"))
        guard case .failure(let error) = result else { Issue.record("a corrupt image was accepted"); return }
        #expect(error.description.contains(scene.server.url("corrupt", "img.raw")))
        #expect(error.description.contains("SHA-256 mismatch: expected \(scene.digest)"), "\(error)")
        #expect(readBytes(scene.destination) == old)
        #expect(scene.partials.isEmpty)
        #expect(try scene.server.requests().count == 1, "a mismatch is not retried")
    }

    @Test(arguments: ["stall", "stallheaders"])
    func stalledServerTimesOut(_ mode: String) throws {
        let scene = try FetchScene(size: 1 << 20)
        let old = try scene.installOld()
        let started = monotonicMilliseconds()
        let result = scene.fetch(scene.request(mode), retries: 0)
        let seconds = (monotonicMilliseconds() - started) / 1000
        guard case .failure(let error) = result else { Issue.record("a stalled transfer succeeded"); return }
        #expect(error.description.contains(scene.server.url(mode, "img.raw")))
        #expect(error.description.contains("too slow") || error.description.lowercased().contains("timed out"), "\(error)")
        #expect(seconds < 10, "the stall timeout (1 s) fired after \(seconds) s")
        #expect(readBytes(scene.destination) == old)
    }

    @Test func connectionResetThenResume() throws {
        let scene = try FetchScene()
        let result = try scene.fetch(scene.request("reset")).get()
        #expect(digestOfFile(scene.destination) == scene.digest)
        #expect(result.attempts == 2)
        let requests = try scene.server.requests()
        #expect(requests.count == 2)
        let range = requests.last?.split(separator: " ")[2] ?? ""
        #expect(range.hasPrefix("bytes=") && range != "bytes=0-", "the second attempt resumes: \(requests)")
        #expect(result.downloaded < Int64(scene.image.count) + 1 << 20, "the prefix is not downloaded twice")
    }

    @Test func serverRestartBetweenRetries() throws {
        let scene = try FetchScene()
        let port = scene.server.port
        let first = scene.server
        let root = scene.served.root
        final class Box: @unchecked Sendable { var server: TestServer? }
        let box = Box()
        let restarted = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            first.process.waitUntilExit()      // the /die/ request ends the server
            sleep(seconds: 0.3)
            box.server = try? TestServer(root: root, port: port)
            restarted.signal()
        }
        var options = scene.options(retries: 6)
        options.retryDelay = 0.2
        options.maxRetryDelay = 0.5
        let result = try Fetcher(log: scene.log, options: options).fetch(scene.request("die"))
        restarted.wait()
        #expect(digestOfFile(scene.destination) == scene.digest)
        #expect(result.attempts >= 2)
        let requests = try box.server?.requests() ?? []
        #expect(requests.last?.contains("bytes=") == true, "the restarted server got a Range request: \(requests)")
    }

    @Test func resumesAPartialFileFromAnEarlierRun() throws {
        let scene = try FetchScene()
        let half = scene.image.count / 2
        let partial = scene.target.path("etc/extensions/" + temporaryName(for: "img.raw", tag: scene.digest, suffix: ".partial"))
        try writeBytes(partial, Array(scene.image[0..<half]))
        let result = try scene.fetch(scene.request("ok")).get()
        #expect(result.resumedFrom == Int64(half))
        #expect(result.downloaded == Int64(scene.image.count - half))
        #expect(digestOfFile(scene.destination) == scene.digest)
        #expect(try scene.server.requests() == ["GET /ok/img.raw bytes=\(half)- DIRECT"])
        #expect(scene.partials.isEmpty)
    }

    @Test func aStalePartialIsDownloadedAgain() throws {
        let scene = try FetchScene(size: 1 << 20)
        let partial = scene.target.path("etc/extensions/" + temporaryName(for: "img.raw", tag: scene.digest, suffix: ".partial"))
        try writeBytes(partial, Array(repeating: 0x55, count: 1000))   // bytes that are not the image's
        let result = try scene.fetch(scene.request("ok")).get()
        #expect(digestOfFile(scene.destination) == scene.digest)
        #expect(result.sha256 == scene.digest)
        #expect(try scene.server.requests().map { $0.split(separator: " ")[2] } == ["bytes=1000-", "-"])
    }

    @Test func aServerWithoutRangesStartsOver() throws {
        let scene = try FetchScene(size: 1 << 20)
        let partial = scene.target.path("etc/extensions/" + temporaryName(for: "img.raw", tag: scene.digest, suffix: ".partial"))
        try writeBytes(partial, Array(scene.image[0..<1000]))
        _ = try scene.fetch(scene.request("norange")).get()
        #expect(digestOfFile(scene.destination) == scene.digest)
    }

    @Test func currentSymlinkAndInstancesMax() throws {
        let scene = try FetchScene(size: 4096)
        let dir = scene.target.path("opt/extensions/img")
        for version in ["1", "2", "3"] { try writeBytes("\(dir)/img-\(version).raw", Array(version.utf8)) }
        try writeBytes("\(dir)/unrelated.txt", [1])
        let link = scene.target.path("etc/extensions/img.raw")
        try scene.target.link("etc/extensions/img.raw", to: "../../opt/extensions/img/img-1.raw")  // the current one is the oldest
        let request = FetchRequest(name: "img", url: scene.server.url("ok", "img.raw"), sha256: scene.digest,
                                   destination: "\(dir)/img-4.raw", required: false, source: "t",
                                   currentSymlink: link, instancesMax: 2, mode: 0o444, version: "4",
                                   instancePatterns: ["img-@v.raw"])
        let result = try scene.fetch(request).get()
        #expect(try readLinkAt(AT_FDCWD, link) == "../../opt/extensions/img/img-4.raw")
        #expect(digestOfFile(link) == scene.digest)
        #expect(listDirectory(dir) == ["img-1.raw", "img-4.raw", "unrelated.txt"], "keeps 2: the new one and the previous current")
        #expect(result.pruned.sorted() == ["\(dir)/img-2.raw", "\(dir)/img-3.raw"])
        #expect(try statAt(AT_FDCWD, "\(dir)/img-4.raw").st_mode & 0o777 == 0o444)
        #expect(listDirectory(scene.target.path("etc/extensions")) == ["img.raw"], "no temporary link left")
    }

    @Test func aFailedFetchLeavesTheSymlinkAlone() throws {
        let scene = try FetchScene(size: 4096)
        let dir = scene.target.path("opt/extensions/img")
        try writeBytes("\(dir)/img-1.raw", [1])
        try scene.target.link("etc/extensions/img.raw", to: "../../opt/extensions/img/img-1.raw")
        var request = scene.request("corrupt")
        request.destination = "\(dir)/img-2.raw"
        request.currentSymlink = scene.target.path("etc/extensions/img.raw")
        request.instancesMax = 2
        request.instancePatterns = ["img-@v.raw"]
        guard case .failure = scene.fetch(request) else { Issue.record("a corrupt image was installed"); return }
        #expect(try readLinkAt(AT_FDCWD, scene.target.path("etc/extensions/img.raw")) == "../../opt/extensions/img/img-1.raw")
        #expect(listDirectory(dir) == ["img-1.raw"])
    }

    @Test func proxyFromTheEnvironment() throws {
        let scene = try FetchScene(size: 4096)
        let proxy = "http://127.0.0.1:\(scene.server.port)"
        // Other suites may fetch from 127.0.0.1 meanwhile: keep them off the proxy.
        setenv("http_proxy", proxy, 1)
        setenv("no_proxy", "127.0.0.1", 1)
        defer { unsetenv("http_proxy"); unsetenv("no_proxy") }
        var request = scene.request("ok")
        request.url = "http://fetch-test.invalid/ok/img.raw"   // resolvable only through the proxy
        _ = try scene.fetch(request, retries: 0).get()
        #expect(digestOfFile(scene.destination) == scene.digest)
        #expect(try scene.server.requests() == ["GET /ok/img.raw - PROXIED"])

        try unlinkAt(AT_FDCWD, scene.destination)
        setenv("no_proxy", "127.0.0.1,fetch-test.invalid", 1)
        guard case .failure(let error) = scene.fetch(request, retries: 0) else { Issue.record("no_proxy was ignored"); return }
        #expect(error.description.contains("fetch-test.invalid"), "\(error)")
        #expect(try scene.server.requests().count == 1)
    }

    @Test func offlineNeverConnects() throws {
        let scene = try FetchScene(size: 4096)
        var options = scene.options()
        options.offline = true
        #expect(throws: EarlyextError.self) { try Fetcher(log: scene.log, options: options).fetch(scene.request("ok")) }
        #expect(try scene.server.requests().isEmpty)
    }

    @Test func fileURL() throws {
        let scene = try FetchScene(size: 4096)
        var request = scene.request("ok")
        request.url = "file://" + scene.served.path("img.raw")
        _ = try scene.fetch(request).get()
        #expect(digestOfFile(scene.destination) == scene.digest)
        request.url = "file://" + scene.served.path("missing.raw")
        guard case .failure(let error) = scene.fetch(request) else { Issue.record("a missing file was fetched"); return }
        #expect(error.description.contains("missing.raw"))
    }

    @Test func httpsWithTheGivenCAOnly() throws {
        let keys = try Fixture()
        let made = try runShell("""
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
          -keyout '\(keys.path("key.pem"))' -out '\(keys.path("cert.pem"))'
        """)
        try #require(made.status == 0, "openssl could not make a certificate: \(made.output)")
        let scene = try FetchScene(size: 4096, tls: (keys.path("cert.pem"), keys.path("key.pem")))
        var options = scene.options(retries: 0)
        options.caFile = "/etc/ssl/certs/ca-certificates.crt"
        let refused = Result { try Fetcher(log: scene.log, options: options).fetch(scene.request("ok")) }
        guard case .failure(let error) = refused else { Issue.record("an unknown CA was trusted"); return }
        #expect("\(error)".contains("https://127.0.0.1"), "\(error)")
        #expect("\(error)".lowercased().contains("certificate"), "\(error)")
        #expect(readBytes(scene.destination) == nil)
        options.caFile = keys.path("cert.pem")
        _ = try Fetcher(log: scene.log, options: options).fetch(scene.request("ok"))
        #expect(digestOfFile(scene.destination) == scene.digest)
    }

    @Test(.enabled(if: getuid() == 0, "needs root: a small tmpfs in a private mount namespace (skipped when not root)"))
    func noSpaceOnASmallTmpfs() throws {
        let scene = try FetchScene(size: 3 << 20)
        let mountPoint = scene.target.path("small")
        try makeDirectories(mountPoint)
        final class Box: @unchecked Sendable { var result: Result<FetchResult, EarlyextError>?; var after: String? }
        let box = Box()
        let request = FetchRequest(name: "img", url: scene.server.url("ok", "img.raw"), sha256: scene.digest,
                                   destination: mountPoint + "/img.raw", required: false, source: "t")
        let log = scene.log, options = scene.options()
        let setup = withPrivateTmpfs(at: mountPoint, size: "1m") {
            try? writeBytes(mountPoint + "/img.raw", Array("old image\n".utf8))
            box.result = Result { try Fetcher(log: log, options: options).fetch(request) }.mapError { $0 as! EarlyextError }
            box.after = "old=\(readBytes(mountPoint + "/img.raw").map { String(decoding: $0, as: UTF8.self) } ?? "missing") entries=\(listDirectory(mountPoint))"
        }
        guard case .failure(let error)? = box.result else { Issue.record("fetch onto a full tmpfs: \(String(describing: box.result)) \(setup ?? "")"); return }
        #expect(error.description.contains(scene.server.url("ok", "img.raw")), "\(error)")
        #expect(error.description.contains("not enough space"), "\(error)")
        #expect(box.after == "old=old image\n entries=[\"img.raw\"]", "the old image stays, no partial: \(box.after ?? "")")
        #expect(listDirectory(mountPoint).isEmpty, "the tmpfs was private to the thread")
    }
}
