/// One image to download: where from, what it must hash to, and where it goes.
public struct FetchRequest: Equatable, Sendable {
    /// The extension name ("kubernetes"), for messages.
    public var name: String
    /// http://, https:// or file://.
    public var url: String
    /// The expected SHA-256 (lowercase hex). Always set for http(s) URLs by `planFetches`.
    public var sha256: String?
    /// The host path of the image once installed ("/sysroot/etc/extensions/kubernetes.raw").
    /// Its directory is created if missing.
    public var destination: String
    /// Whether the boot must stop if this cannot be fetched (selection `Required=yes`).
    public var required: Bool
    /// The selection or transfer file that asked for it, under the root
    /// ("/etc/earlyext/select.d/k8s.conf", "/etc/sysupdate.kubernetes.d/kubernetes.conf").
    public var source: String
    /// The host path of a symlink to point at `destination` once it is installed (transfers'
    /// `CurrentSymlink=`), replaced atomically.
    public var currentSymlink: String?
    /// Keep at most this many instances matching `instancePatterns` in the destination's
    /// directory (transfers' `InstancesMax=`); nil: no pruning.
    public var instancesMax: Int?
    /// The file's access mode (default 0644).
    public var mode: UInt32?
    /// The version being installed (transfers), for messages and the state record.
    public var version: String?
    /// The target `MatchPattern=`s (specifiers expanded), to recognise instances when pruning.
    public var instancePatterns: [String]
    /// Versions never pruned (`ProtectVersion=`).
    public var protectedVersions: [String]

    public init(name: String, url: String, sha256: String?, destination: String, required: Bool, source: String,
                currentSymlink: String? = nil, instancesMax: Int? = nil, mode: UInt32? = nil, version: String? = nil,
                instancePatterns: [String] = [], protectedVersions: [String] = []) {
        self.name = name
        self.url = url
        self.sha256 = sha256
        self.destination = destination
        self.required = required
        self.source = source
        self.currentSymlink = currentSymlink
        self.instancesMax = instancesMax
        self.mode = mode
        self.version = version
        self.instancePatterns = instancePatterns
        self.protectedVersions = protectedVersions
    }
}

/// What a successful fetch did, for the log and the state record.
public struct FetchResult: Equatable, Sendable {
    public var name: String
    /// The URL asked for (before redirects).
    public var url: String
    /// The image's size.
    public var bytes: Int64
    /// The bytes received in this run (less than `bytes` after a resume).
    public var downloaded: Int64
    /// Where the download resumed from a partial file left by an earlier run (0: from the start).
    public var resumedFrom: Int64
    /// Wall-clock seconds, retries and backoff included.
    public var seconds: Double
    /// The SHA-256 of what was installed, lowercase hex.
    public var sha256: String
    /// The host path it was installed at.
    public var destination: String
    public var attempts: Int
    /// The symlink repointed at `destination`, if any.
    public var currentSymlink: String?
    /// Older instances removed (`InstancesMax=`), host paths.
    public var pruned: [String]
}

/// How the fetcher behaves. `[Fetch]` in `etc/earlyext/earlyext.conf` sets some of it; see
/// `FetchOptions.apply(config:source:)`.
public struct FetchOptions: Equatable, Sendable {
    /// Seconds to establish a connection (CURLOPT_CONNECTTIMEOUT_MS).
    public var connectTimeout: Double = 30
    /// A transfer that receives less than 1 byte/s for this many whole seconds is aborted
    /// (CURLOPT_LOW_SPEED_LIMIT/TIME). This also bounds the wait for the response headers.
    public var stallTimeout: Int = 30
    /// Attempts after the first, for failures that may pass: connection errors, timeouts, cut
    /// transfers, HTTP 408, 429 and 5xx. 404 and other 4xx, digest mismatches and a full disk
    /// are not retried.
    public var retries: Int = 4
    /// The first backoff in seconds; doubled after each failed attempt, up to `maxRetryDelay`.
    public var retryDelay: Double = 1
    public var maxRetryDelay: Double = 30
    /// CURLOPT_MAXREDIRS. Redirects may only lead to http(s).
    public var maxRedirects: Int = 10
    /// A CA bundle (CURLOPT_CAINFO); nil: libcurl's built-in default, the system store
    /// (`/etc/ssl/certs/ca-certificates.crt` on Debian). See `defaultCABundle(root:)`.
    public var caFile: String?
    /// Never touch the network: `fetch` throws, and `planFetches` does not list sources.
    public var offline = false
    /// In the initrd: how long to wait for the network (a default route) once a download needs it.
    public var networkTimeout: Double = 60
    /// At most one progress line per this many seconds, and none for downloads shorter.
    public var progressInterval: Double = 1
    public var userAgent = "earlyext"
    /// The largest SHA256SUMS (or signature) accepted.
    public var manifestLimit = 4 << 20

    public init() {}
}
