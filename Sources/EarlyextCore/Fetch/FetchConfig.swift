import Glibc

extension FetchOptions {
    /// Applies `[Fetch]` from `etc/earlyext/earlyext.conf` (`source` names the file in messages):
    /// - `Timeout=` a systemd time span (`30`, `30s`, `1min 30s`, `500ms`): both the connect
    ///   timeout and the stall timeout (no byte for that long; rounded up to whole seconds).
    /// - `Retries=` attempts after the first, 0 or more.
    /// - `NetworkTimeout=` a time span: in the initrd, how long to wait for the network once a
    ///   download needs it (default 60 s).
    /// Unknown keys are warnings; a bad value is an error naming the file, line and key, and
    /// leaves that option as it was.
    public mutating func apply(config: INIFile, source: String) -> (warnings: [String], errors: [String]) {
        var warnings: [String] = []
        var errors: [String] = []
        for entry in config.entries where entry.section == "Fetch" {
            let place = "\(source):\(entry.line): \(entry.key)="
            switch entry.key {
            case "Timeout":
                guard let seconds = parseTimeSpan(entry.value), seconds > 0 else {
                    errors.append("\(place): '\(entry.value)' is not a time span (like 30s or 2min)")
                    continue
                }
                connectTimeout = seconds
                stallTimeout = max(1, Int(seconds.rounded(.up)))
            case "NetworkTimeout":
                guard let seconds = parseTimeSpan(entry.value), seconds > 0 else {
                    errors.append("\(place): '\(entry.value)' is not a time span (like 30s or 2min)")
                    continue
                }
                networkTimeout = seconds
            case "Retries":
                guard let count = Int(entry.value), count >= 0 else {
                    errors.append("\(place): '\(entry.value)' is not a number of retries")
                    continue
                }
                retries = count
            default:
                warnings.append("\(place): unknown key, ignored")
            }
        }
        return (warnings, errors)
    }

    /// A CA bundle for HTTPS: the first that exists of the usual bundle paths in the running
    /// system (the initrd), then under `root`. nil if none exists (libcurl then tries its
    /// built-in default, and HTTPS fails with a certificate error naming the problem).
    public static func defaultCABundle(root: String) -> String? {
        let bundles = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                       "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"]
        let prefix = hostPrefix(forRoot: root)
        for bundle in bundles where access(bundle, R_OK) == 0 { return bundle }
        if !prefix.isEmpty, let rootFD = try? openRoot(root) {
            for bundle in bundles {
                if let resolved = try? resolve(inside: rootFD.rawValue, bundle, rootName: root), resolved.isRegularFile {
                    return prefix + resolved.path
                }
            }
        }
        return nil
    }
}

/// systemd's time span syntax (`parse_sec`): numbers with units `us ms s sec m min h hr d`,
/// summed (`1min 30s`); a bare number is seconds. Returns seconds, or nil.
func parseTimeSpan(_ text: String) -> Double? {
    let units: [String: Double] = [
        "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1,
        "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
        "d": 86400, "day": 86400, "days": 86400,
    ]
    var total = 0.0
    var rest = Substring(text.trimmingCharacters())
    guard !rest.isEmpty else { return nil }
    while !rest.isEmpty {
        let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        rest = rest.dropFirst(number.count).drop { $0 == " " }
        let unit = rest.prefix { $0.isASCII && $0.isLetter }
        guard let factor = units[String(unit)] else { return nil }
        total += value * factor
        rest = rest.dropFirst(unit.count).drop { $0 == " " }
    }
    return total
}

extension String {
    /// Without leading and trailing spaces and tabs.
    func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
