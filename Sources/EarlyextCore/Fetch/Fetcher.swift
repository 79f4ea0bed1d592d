import CCurl
import CShim
import Glibc

/// Downloads images and manifests with libcurl.
///
/// An image goes to a temporary name in its target directory (`.#earlyext.NAME.SHA256.partial`),
/// hashed while it streams, then is `fsync`ed, renamed to its final name and the directory
/// `fsync`ed. A partial file left by a failed attempt (or an earlier boot) is resumed with a
/// Range request: its bytes are hashed once, the rest as it arrives. Nothing that failed the
/// digest ever reaches the final name, and the old image stays until the new one replaces it
/// in one rename.
public struct Fetcher {
    public var log: Log
    public var options: FetchOptions

    public init(log: Log, options: FetchOptions) {
        self.log = log
        self.options = options
    }

    // MARK: Images

    /// Downloads `request.url` to `request.destination`, checks its SHA-256, installs it, repoints
    /// `currentSymlink` and prunes old instances. Throws an `EarlyextError` (code `.fetch`) naming
    /// the URL and the reason; on any failure the destination and the symlink are as they were.
    public func fetch(_ request: FetchRequest) throws -> FetchResult {
        let started = monotonicMilliseconds()
        func failure(_ reason: String, errno: Errno? = nil) -> EarlyextError {
            EarlyextError(.fetch, "\(request.name): \(request.url): \(reason)", errno: errno)
        }
        guard !options.offline else { throw failure("not fetched: offline") }

        let (directory, fileName) = splitPath(request.destination)
        guard !fileName.isEmpty, fileName != ".", fileName != ".." else { throw failure("invalid destination \(request.destination)") }
        do { try makeDirectories(directory) } catch { throw failure("cannot create \(directory)", errno: error) }
        let directoryFD: FileDescriptor
        do { directoryFD = try openPath(directory, O_RDONLY | O_DIRECTORY) } catch { throw failure("cannot open \(directory)", errno: error) }

        let partialName = temporaryName(for: fileName, tag: request.sha256 ?? "unverified", suffix: ".partial")
        removeStalePartials(directoryFD.rawValue, fileName: fileName, keeping: partialName)
        let partialFD: OwnedDescriptor
        do {
            partialFD = OwnedDescriptor(try openAt(directoryFD.rawValue, partialName, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600))
        } catch {
            throw failure("cannot create \(directory)/\(partialName)", errno: error)
        }
        let directoryNumber = directoryFD.rawValue
        func discardPartial() { try? unlinkAt(directoryNumber, partialName) }

        // A partial file from before: resume it, unless there is no digest to check it against.
        let hasher = SHA256()
        var resumedFrom: Int64 = 0
        do {
            if request.sha256 == nil {
                try truncateDescriptor(partialFD.rawValue, to: 0)
            } else {
                resumedFrom = try hashPrefix(partialFD.rawValue, into: hasher)
                if resumedFrom > 0 { log.info("\(request.name): resuming \(request.url) at byte \(resumedFrom)") }
            }
        } catch {
            discardPartial()
            throw failure("cannot read the partial file \(directory)/\(partialName)", errno: error as? Errno)
        }

        let writer = ImageWriter(file: partialFD, offset: resumedFrom, hasher: hasher)
        let sink = TransferSink(writer: writer, label: request.name, log: log, progressInterval: options.progressInterval)
        var attempts = 0
        var digest = ""
        var startedOver = false
        while true {
            do {
                attempts += try transfer(request.url, into: sink)
            } catch let error as TransferError {
                // A partial file is kept for the next attempt to resume, unless it is useless or empty.
                if error.discardsPartial || sink.offset == 0 || (try? writer.finish()) == nil { discardPartial() }
                throw failure(error.reason + (error.attempts > 1 ? " (after \(error.attempts) attempts)" : ""), errno: error.errno)
            }
            do throws(Errno) {
                digest = try writer.hexDigest()
            } catch {
                discardPartial()
                throw failure("cannot write \(directory)/\(partialName): \(error)", errno: error)
            }
            guard let expected = request.sha256, digest != expected else { break }
            // A partial file from an earlier run may hold other bytes than the server has now:
            // start over once from nothing before calling the image bad.
            if resumedFrom > 0, !startedOver {
                log.warning("\(request.name): SHA-256 mismatch after resuming at byte \(resumedFrom); downloading \(request.url) again from the start")
                startedOver = true
                do throws(Errno) { try sink.restart() } catch { discardPartial(); throw failure("cannot truncate the partial file", errno: error) }
                continue
            }
            discardPartial()
            throw failure("SHA-256 mismatch: expected \(expected), got \(digest) (\(sink.offset) bytes); the image was discarded")
        }
        let size = sink.offset

        // Install: mode, digest attribute, fsync, rename, directory fsync.
        do {
            try changeMode(partialFD.rawValue, mode_t(request.mode ?? 0o644))
            try? setExtendedAttribute(partialFD.rawValue, digestAttribute, Array(digest.utf8))
            try syncDescriptor(partialFD.rawValue)
            try renameAt(directoryFD.rawValue, partialName, directoryFD.rawValue, fileName)
            try syncDescriptor(directoryFD.rawValue)
        } catch {
            discardPartial()
            throw failure("cannot install \(request.destination)", errno: error)
        }

        var previousCurrent: String?
        if let link = request.currentSymlink {
            previousCurrent = (try? readLinkAt(AT_FDCWD, link)).flatMap { $0.split(separator: "/").last.map(String.init) }
            do {
                try replaceSymlink(at: link, pointingTo: request.destination)
            } catch {
                throw failure("installed \(request.destination), but cannot point \(link) at it", errno: error as? Errno)
            }
        }

        var pruned: [String] = []
        if let keep = request.instancesMax, !request.instancePatterns.isEmpty {
            let patterns = request.instancePatterns.compactMap { try? MatchPattern($0) }
            let protected = Set([fileName] + (previousCurrent.map { [$0] } ?? []))
            pruned = pruneInstances(directoryFD.rawValue, directory: directory, patterns: patterns, keep: keep,
                                    protectedNames: protected, protectedVersions: request.protectedVersions)
        }

        let seconds = (monotonicMilliseconds() - started) / 1000
        return FetchResult(name: request.name, url: request.url, bytes: size, downloaded: sink.received,
                           resumedFrom: resumedFrom, seconds: seconds, sha256: digest,
                           destination: request.destination, attempts: attempts,
                           currentSymlink: request.currentSymlink, pruned: pruned)
    }

    // MARK: Small files (manifests, signatures)

    /// Downloads `url` into memory (at most `options.manifestLimit` bytes), with the same
    /// timeouts and retries as images. A 404 throws too.
    public func fetchData(_ url: String) throws -> [UInt8] {
        guard !options.offline else { throw EarlyextError(.fetch, "\(url): not fetched: offline") }
        let sink = TransferSink(limit: options.manifestLimit, label: url, log: log, progressInterval: .infinity)
        do {
            _ = try transfer(url, into: sink)
        } catch let error as TransferError {
            throw EarlyextError(.fetch, "\(url): \(error.reason)" + (error.attempts > 1 ? " (after \(error.attempts) attempts)" : ""), errno: error.errno)
        }
        return sink.memory
    }

    // MARK: The transfer loop

    /// Runs the transfer until it succeeds or fails for good, resuming into `sink` after each
    /// failed attempt. Returns the number of attempts.
    private func transfer(_ url: String, into sink: TransferSink) throws -> Int {
        let curl: CurlEasy
        do { curl = try CurlEasy() } catch { throw TransferError(reason: "\(error)", retryable: false) }
        sink.curl = curl
        defer { sink.curl = nil }
        let isHTTP = url.lowercased().hasPrefix("http")
        var attempt = 0
        var restarts = 0
        while true {
            attempt += 1
            var outcome: TransferError?
            if let setupFailure = configure(curl, url: url, sink: sink) {
                outcome = TransferError(reason: "\(setupFailure)", retryable: false)
            } else {
                sink.beginAttempt()
                let code = curl.perform()
                if let failure = sink.failure {
                    outcome = failure
                } else if code == CURLE_RANGE_ERROR {
                    outcome = TransferError(reason: "the server does not resume", retryable: true, restart: true)
                } else if code != CURLE_OK {
                    outcome = TransferError(reason: curl.message(for: code), retryable: isRetryable(code))
                } else if isHTTP, !(200...299).contains(curl.responseCode) {
                    outcome = TransferError(httpStatus: curl.responseCode)
                } else if let total = sink.expectedTotal, sink.offset != total {
                    outcome = TransferError(reason: "truncated: \(sink.offset) of \(total) bytes", retryable: true)
                }
            }
            guard var failure = outcome else { return attempt }
            failure.attempts = attempt

            if failure.restart, restarts < 2, sink.offset > 0 || sink.requestedFrom > 0 {
                // The server cannot continue the partial file (416, or no Range support): start
                // over at once; that is not a failed attempt.
                restarts += 1
                attempt -= 1
                log.info("\(sink.label): \(failure.reason); restarting \(url) from the start")
                do { try sink.restart() } catch {
                    throw TransferError(reason: "cannot truncate the partial file", retryable: false, errno: error)
                }
                continue
            }
            guard failure.retryable, attempt <= options.retries else { throw failure }
            let delay = min(options.retryDelay * Double(1 << min(attempt - 1, 30)), options.maxRetryDelay)
            log.warning("\(sink.label): \(url): \(failure.reason); retrying in \(formatSeconds(delay)) (attempt \(attempt + 1) of \(options.retries + 1))")
            sleep(seconds: delay)
        }
    }

    /// Sets up `curl` for one attempt; returns the error if libcurl refuses an option.
    private func configure(_ curl: CurlEasy, url: String, sink: TransferSink) -> CurlError? {
        do {
            try setOptions(curl, url: url, sink: sink)
            return nil
        } catch {
            return error
        }
    }

    private func setOptions(_ curl: CurlEasy, url: String, sink: TransferSink) throws(CurlError) {
        try curl.reset()
        try curl.set(CURLOPT_URL, url)
        try curl.set(CURLOPT_PROTOCOLS_STR, "http,https,file")
        try curl.set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        try curl.set(CURLOPT_FOLLOWLOCATION, 1)
        try curl.set(CURLOPT_MAXREDIRS, options.maxRedirects)
        try curl.set(CURLOPT_NOSIGNAL, 1)
        try curl.set(CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(options.connectTimeout * 1000)))
        try curl.set(CURLOPT_LOW_SPEED_LIMIT, 1)
        try curl.set(CURLOPT_LOW_SPEED_TIME, max(1, options.stallTimeout))
        try curl.set(CURLOPT_USERAGENT, options.userAgent)
        try curl.set(CURLOPT_BUFFERSIZE, 256 * 1024)
        if let caFile = options.caFile { try curl.set(CURLOPT_CAINFO, caFile) }
        try curl.set(CURLOPT_WRITEFUNCTION, callback: transferWriteCallback)
        try curl.set(CURLOPT_WRITEDATA, pointer: Unmanaged.passUnretained(sink).toOpaque())
        if sink.offset > 0 { try curl.set(CURLOPT_RESUME_FROM_LARGE, offset: sink.offset) }
    }
}

/// The xattr holding an installed image's SHA-256 (hex), so `--update` can compare without
/// reading the image. Best effort: file systems without user xattrs just don't get it.
let digestAttribute = "user.earlyext.sha256"

/// CURLE codes worth another attempt.
private func isRetryable(_ code: CURLcode) -> Bool {
    [CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT,
     CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_HTTP2, CURLE_HTTP2_STREAM,
     CURLE_SSL_CONNECT_ERROR, CURLE_HTTP3, CURLE_QUIC_CONNECT_ERROR].contains(code)
}

/// Why an attempt failed, and what to do about it.
struct TransferError: Error {
    var reason: String
    var retryable: Bool
    /// Start the partial file over (and don't count the attempt).
    var restart = false
    /// The partial file is useless (a 404, a full disk): remove it.
    var discardsPartial = false
    var errno: Errno?
    var attempts = 1

    init(reason: String, retryable: Bool, restart: Bool = false, discardsPartial: Bool = false, errno: Errno? = nil) {
        self.reason = reason
        self.retryable = retryable
        self.restart = restart
        self.discardsPartial = discardsPartial
        self.errno = errno
    }

    init(httpStatus: Int) {
        let retryable = httpStatus == 408 || httpStatus == 429 || (500...599).contains(httpStatus)
        self.init(reason: "HTTP \(httpStatus)\(httpReason(httpStatus).map { " \($0)" } ?? "")", retryable: retryable,
                  restart: httpStatus == 416, discardsPartial: !retryable && httpStatus != 416)
    }
}

private func httpReason(_ status: Int) -> String? {
    switch status {
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 408: "Request Timeout"
    case 410: "Gone"
    case 416: "Range Not Satisfiable"
    case 429: "Too Many Requests"
    case 500: "Internal Server Error"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    default: nil
    }
}

// MARK: - The sink libcurl writes into

/// CURLOPT_WRITEFUNCTION: hands each piece of the body to the sink. Returning less than it was
/// given aborts the transfer (CURLE_WRITE_ERROR); the sink keeps the reason.
private let transferWriteCallback: ee_curl_data_callback = { data, size, count, context in
    guard let context, let data else { return 0 }
    let sink = Unmanaged<TransferSink>.fromOpaque(context).takeUnretainedValue()
    return sink.receive(UnsafeRawBufferPointer(start: data, count: size * count))
}

/// Where a body goes: an image file (through an `ImageWriter`, hashed) or memory.
final class TransferSink {
    let writer: ImageWriter?
    let limit: Int?
    /// The bytes held so far: the file's length, or `memory.count`.
    private(set) var offset: Int64
    private(set) var memory: [UInt8] = []
    /// Bytes received over the network, all attempts.
    private(set) var received: Int64 = 0
    /// Where the current attempt asked to start.
    private(set) var requestedFrom: Int64 = 0
    /// The body's final length, once the response headers said.
    private(set) var expectedTotal: Int64?
    /// Why the callback aborted the current attempt.
    private(set) var failure: TransferError?
    unowned(unsafe) var curl: CurlEasy?
    let label: String
    private let log: Log
    private let progressInterval: Double
    private var checked = false
    private var started = 0.0
    private var lastReport = 0.0
    private var attemptStartOffset: Int64 = 0

    init(writer: ImageWriter, label: String, log: Log, progressInterval: Double) {
        self.writer = writer
        self.limit = nil
        self.offset = writer.offset
        self.label = label
        self.log = log
        self.progressInterval = progressInterval
    }

    init(limit: Int, label: String, log: Log, progressInterval: Double) {
        self.writer = nil
        self.limit = limit
        self.offset = 0
        self.label = label
        self.log = log
        self.progressInterval = progressInterval
    }

    func beginAttempt() {
        requestedFrom = offset
        attemptStartOffset = offset
        failure = nil
        checked = false
        expectedTotal = nil
        started = monotonicMilliseconds() / 1000
        lastReport = started
    }

    /// Empties the file (or memory) and the digest, to download from the start.
    func restart() throws(Errno) {
        try writer?.restart()
        memory = []
        offset = 0
    }

    func receive(_ bytes: UnsafeRawBufferPointer) -> Int {
        if !checked {
            checked = true
            if let problem = checkResponse() {
                failure = problem
                return 0
            }
        }
        if let writer {
            do {
                try writer.append(bytes)
            } catch {
                failure = TransferError(reason: "cannot write: \(error)", retryable: false,
                                        discardsPartial: error == .noSpace, errno: error)
                return 0
            }
        } else {
            if let limit, memory.count + bytes.count > limit {
                failure = TransferError(reason: "larger than \(limit) bytes", retryable: false)
                return 0
            }
            memory.append(contentsOf: bytes)
        }
        offset += Int64(bytes.count)
        received += Int64(bytes.count)
        reportProgress()
        return bytes.count
    }

    /// At the first piece of the body: is this the body we want, and does it fit?
    private func checkResponse() -> TransferError? {
        guard let curl else { return nil }
        let status = curl.responseCode
        if status != 0 {
            if status == 200, requestedFrom > 0 {
                // The server sent the whole file instead of the rest of it.
                do { try restart() } catch { return TransferError(reason: "cannot truncate: \(error)", retryable: false, errno: error) }
            } else if status != 200 && status != 206 {
                return TransferError(httpStatus: status)
            }
        }
        guard let length = curl.contentLength else { return nil }
        expectedTotal = offset + length
        if let limit, length > limit {
            return TransferError(reason: "larger than \(limit) bytes (\(length))", retryable: false)
        }
        if let writer {
            do {
                let stats = try fileSystemStatistics(writer.fd)
                let available = Int64(stats.f_bavail) * Int64(stats.f_frsize)
                if length > available {
                    return TransferError(reason: "not enough space: \(length) bytes needed, \(available) available",
                                         retryable: false, discardsPartial: true, errno: .noSpace)
                }
            } catch {
                return TransferError(reason: "cannot check free space: \(error)", retryable: false, errno: error)
            }
        }
        return nil
    }

    /// One line on stderr, at most once per `progressInterval`, the first after one interval.
    private func reportProgress() {
        guard progressInterval.isFinite else { return }
        let now = monotonicMilliseconds() / 1000
        guard now - lastReport >= progressInterval else { return }
        lastReport = now
        let rate = Double(offset - attemptStartOffset) / max(now - started, 0.001)
        var line = "\(label): \(formatBytes(offset))"
        if let total = expectedTotal, total > 0 {
            line += " of \(formatBytes(total)) (\(Int(Double(offset) * 100 / Double(total)))%)"
        }
        log.info(line + ", \(formatBytes(Int64(rate)))/s")
    }
}

// MARK: - Files

/// Hashes the first `length` bytes of `fd` (its whole current length) into `hasher`.
private func hashPrefix(_ fd: Int32, into hasher: SHA256) throws -> Int64 {
    let length = Int64(try statDescriptor(fd).st_size)
    var offset: Int64 = 0
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    while offset < length {
        let count = try readSome(fd, into: buffer, at: offset)
        if count == 0 { break }
        hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        offset += Int64(count)
    }
    return offset
}

/// `.#earlyext.NAME.TAG.SUFFIX`, hidden from discovery and from systemd-sysext (".#" names are
/// not valid image names), shortened to fit NAME_MAX.
func temporaryName(for fileName: String, tag: String, suffix: String) -> String {
    let fixed = ".#earlyext.".utf8.count + 1 + tag.utf8.count + suffix.utf8.count
    var name = fileName
    while name.utf8.count + fixed > Int(NAME_MAX) { name.removeLast() }
    return ".#earlyext.\(name).\(tag)\(suffix)"
}

/// Removes `.#earlyext.NAME.*.partial` files other than `keeping` (downloads of another digest).
private func removeStalePartials(_ directoryFD: Int32, fileName: String, keeping: String) {
    guard let entries = try? directoryEntries(directoryFD) else { return }
    let prefix = temporaryName(for: fileName, tag: "", suffix: "")  // ".#earlyext.NAME."
    for entry in entries where entry.name != keeping && entry.name.hasPrefix(prefix) && entry.name.hasSuffix(".partial") {
        try? unlinkAt(directoryFD, entry.name)
    }
}

/// "/a/b/c.raw" → ("/a/b", "c.raw").
func splitPath(_ path: String) -> (directory: String, name: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let directory = String(path[..<slash])
    return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
}

/// The relative path from directory `from` to `to` (both absolute and normalized).
func relativePath(from: String, to: String) -> String {
    let a = from.split(separator: "/")
    let b = to.split(separator: "/")
    var common = 0
    while common < a.count, common < b.count, a[common] == b[common] { common += 1 }
    let ups = Array(repeating: "..", count: a.count - common)
    return (ups + b[common...].map(String.init)).joined(separator: "/")
}

/// Points the symlink `link` at `target` (host paths) atomically: a new symlink under a temporary
/// name in the same directory, renamed over the old one, then the directory fsynced. The link
/// holds a relative path, as systemd-sysupdate makes it, so it resolves the same inside the root.
func replaceSymlink(at link: String, pointingTo target: String) throws {
    let (directory, name) = splitPath(link)
    try makeDirectories(directory)
    let directoryFD = try openPath(directory, O_RDONLY | O_DIRECTORY)
    let temporary = temporaryName(for: name, tag: String(UInt64.random(in: 0...UInt64.max), radix: 16), suffix: ".link")
    try makeSymlink(relativePath(from: directory, to: target), at: directoryFD.rawValue, temporary)
    do {
        try renameAt(directoryFD.rawValue, temporary, directoryFD.rawValue, name)
    } catch {
        try? unlinkAt(directoryFD.rawValue, temporary)
        throw error
    }
    try syncDescriptor(directoryFD.rawValue)
}

/// Deletes the regular files in the directory that match `patterns` so that at most `keep`
/// remain: `protectedNames` and `protectedVersions` always stay (and count), then the newest
/// others. Returns the host paths removed.
func pruneInstances(_ directoryFD: Int32, directory: String, patterns: [MatchPattern], keep: Int,
                    protectedNames: Set<String>, protectedVersions: [String]) -> [String] {
    guard let entries = try? directoryEntries(directoryFD) else { return [] }
    var instances: [(name: String, version: String)] = []
    for entry in entries where !entry.name.hasPrefix(".") {
        guard let version = patterns.lazy.compactMap({ $0.match(entry.name) }).first,
              let status = try? statAt(directoryFD, entry.name, flags: AT_SYMLINK_NOFOLLOW),
              ee_s_isreg(status.st_mode) != 0 else { continue }
        instances.append((entry.name, version))
    }
    instances.sort { compareVersions($0.version, $1.version) > 0 }
    func isProtected(_ instance: (name: String, version: String)) -> Bool {
        protectedNames.contains(instance.name) || protectedVersions.contains { compareVersions($0, instance.version) == 0 }
    }
    // The protected instances count against the limit; the newest others fill what is left.
    var kept = instances.filter(isProtected).count
    var removed: [String] = []
    for instance in instances where !isProtected(instance) {
        if kept < keep {
            kept += 1
            continue
        }
        if (try? unlinkAt(directoryFD, instance.name)) != nil {
            removed.append(directory + "/" + instance.name)
        }
    }
    if !removed.isEmpty { try? syncDescriptor(directoryFD) }
    return removed
}

// MARK: - Formatting

func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    if unit == 0 { return "\(bytes) B" }
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) \(units[unit])"
}

func formatSeconds(_ seconds: Double) -> String {
    let millis = Int((seconds * 1000).rounded())
    return millis % 1000 == 0 ? "\(millis / 1000)s" : "\(millis / 1000).\(String(millis % 1000 + 1000).dropFirst())s"
}
