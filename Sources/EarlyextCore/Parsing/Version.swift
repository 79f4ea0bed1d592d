// STUB, replaced by the real strverscmp_improved port (owner: parsing helper).
/// Compares two version strings the way systemd's `strverscmp_improved()` does.
/// Returns a negative number, zero or a positive number.
public func compareVersions(_ a: String, _ b: String) -> Int {
    a == b ? 0 : (a < b ? -1 : 1)
}
