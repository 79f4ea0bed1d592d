/// Whether an extension may be merged on a host.
public enum MatchResult: Equatable, Sendable {
    case compatible
    /// One line naming the field and both values.
    case incompatible(String)
}

/// Matches an extension's extension-release fields against the host, with systemd-sysext's rules
/// (`extension_release_validate()`, v258+), in systemd's order:
/// 1. `SYSEXT_SCOPE=` (whitespace-separated, default "system portable") must list the host scope;
/// 2. `ARCHITECTURE=`, unless unset, empty or `_any`, must equal the host architecture;
/// 3. `ID=` must be set; `_any` is compatible at once (no version checks); otherwise it must equal
///    the host `ID=` or be listed in the host `ID_LIKE=`;
/// 4. a host with neither `VERSION_ID=` nor `SYSEXT_LEVEL=` is compatible;
/// 5. if both sides set `SYSEXT_LEVEL=`, they must be equal strings;
/// 6. otherwise, if the host sets `VERSION_ID=`, the extension's must be equal (and present).
///    (A host with only `SYSEXT_LEVEL=` and an extension without it is compatible, as in systemd.)
/// Empty values count as unset, as systemd's `isempty()` does. `name` is for the caller's messages;
/// the result does not depend on it.
public func matchExtension(name: String, release: OSRelease, host: Host) -> MatchResult {
    explainMatch(release: release, host: host).result
}

/// The match result together with, when compatible, what made it so ("ID=_any",
/// "ID=debian VERSION_ID=12 matches host"). Plan uses the basis in its reasons.
func explainMatch(release: OSRelease, host: Host) -> (result: MatchResult, basis: String) {
    func field(_ fields: OSRelease, _ key: String) -> String? {
        guard let value = fields[key], !value.isEmpty else { return nil }
        return value
    }
    func words(_ text: String) -> [Substring] {
        text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
    }
    func no(_ reason: String) -> (MatchResult, String) { (.incompatible(reason), "") }

    guard let hostID = field(host.osRelease, "ID") else {
        return no("host os-release has no ID")
    }

    // 1. Scope. Set-but-empty is an empty list, which contains nothing.
    let scopeList = release["SYSEXT_SCOPE"].map(words) ?? ["system", "portable"]
    if !scopeList.contains(Substring(host.scope.rawValue)) {
        let shown = release["SYSEXT_SCOPE"].map { $0.isEmpty ? "(empty)" : $0 } ?? "system portable (the default)"
        return no("SYSEXT_SCOPE=\(shown) does not include host scope \(host.scope.rawValue)")
    }

    // 2. Architecture.
    if let architecture = field(release, "ARCHITECTURE"), architecture != "_any", architecture != host.architecture {
        return no("ARCHITECTURE=\(architecture) does not match host architecture \(host.architecture)")
    }

    // 3. Distribution.
    guard let id = field(release, "ID") else {
        return no("ID is not set (it must be _any or match host ID=\(hostID))")
    }
    if id == "_any" { return (.compatible, "ID=_any") }
    let hostIDLike = field(host.osRelease, "ID_LIKE")
    var idBasis = "ID=\(id)"
    if id != hostID {
        guard let hostIDLike, words(hostIDLike).contains(Substring(id)) else {
            let like = hostIDLike.map { "ID_LIKE=\($0)" } ?? "ID_LIKE"
            return no("ID=\(id) does not match host ID=\(hostID) (nor \(like))")
        }
        idBasis += " (host ID_LIKE=\(hostIDLike))"
    }

    // 4. Rolling release host.
    let hostVersion = field(host.osRelease, "VERSION_ID")
    let hostLevel = field(host.osRelease, "SYSEXT_LEVEL")
    if hostVersion == nil && hostLevel == nil {
        return (.compatible, "\(idBasis) matches host, which has no VERSION_ID or SYSEXT_LEVEL")
    }

    // 5. API level on both sides.
    if let hostLevel, let level = field(release, "SYSEXT_LEVEL") {
        guard level == hostLevel else {
            return no("SYSEXT_LEVEL=\(level) does not match host SYSEXT_LEVEL=\(hostLevel)")
        }
        return (.compatible, "\(idBasis) SYSEXT_LEVEL=\(level) matches host")
    }

    // 6. Whole OS version.
    guard let hostVersion else {
        // Host has only SYSEXT_LEVEL, the extension none: systemd accepts on the ID alone.
        return (.compatible, "\(idBasis) matches host (extension has no SYSEXT_LEVEL, host has no VERSION_ID)")
    }
    guard let version = field(release, "VERSION_ID") else {
        return no("VERSION_ID is not set but host has VERSION_ID=\(hostVersion)")
    }
    guard version == hostVersion else {
        return no("VERSION_ID=\(version) does not match host VERSION_ID=\(hostVersion)")
    }
    return (.compatible, "\(idBasis) VERSION_ID=\(version) matches host")
}
