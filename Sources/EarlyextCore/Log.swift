import Glibc

/// Messages to stderr, one line each, naming the image and the reason. In the initrd the unit
/// sends stderr to the journal and the console.
public final class Log: @unchecked Sendable {
    public var level: LogLevel
    public private(set) var warnings: [String] = []

    public init(level: LogLevel = .info) { self.level = level }

    public func error(_ message: String) { emit(.error, message) }
    public func warning(_ message: String) { warnings.append(message); emit(.warning, message) }
    public func info(_ message: String) { emit(.info, message) }
    public func debug(_ message: String) { emit(.debug, message) }

    func emit(_ at: LogLevel, _ message: String) {
        guard at <= level else { return }
        let prefix: String
        switch at {
        case .error: prefix = "earlyext: error: "
        case .warning: prefix = "earlyext: warning: "
        case .info, .debug: prefix = "earlyext: "
        }
        let line = prefix + message.replacingNewlines() + "\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }
}

extension String {
    /// Messages are one line each.
    func replacingNewlines() -> String { split(separator: "\n", omittingEmptySubsequences: false).joined(separator: " ") }
}

/// CLOCK_MONOTONIC in milliseconds, for stage timings.
func monotonicMilliseconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1_000_000
}

/// CLOCK_REALTIME as an RFC 3339 UTC timestamp ("2026-11-21T19:44:02Z").
func currentTimestamp() -> String {
    var now = time(nil)
    var tm = Glibc.tm()
    gmtime_r(&now, &tm)
    func pad(_ v: Int32, _ width: Int = 2) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1))-\(pad(tm.tm_mday))T\(pad(tm.tm_hour)):\(pad(tm.tm_min)):\(pad(tm.tm_sec))Z"
}
