import Glibc

/// What systemd's `%` specifiers expand to in sysupdate.d files (`Path=`, `MatchPattern=`,
/// `CurrentSymlink=`, `ProtectVersion=`), as systemd's `system_and_tmp_specifier_table` defines
/// them. They describe the tree being extended: the os-release under the root and its machine ID,
/// plus the running kernel's boot ID, host name and release.
///
/// | specifier | value |
/// |---|---|
/// | `%a` | the architecture, in systemd's naming (`x86-64`, `arm64`) |
/// | `%A` | os-release `IMAGE_VERSION` |
/// | `%b` | the boot ID (`/proc/sys/kernel/random/boot_id`, 32 hex digits) |
/// | `%B` | os-release `BUILD_ID` |
/// | `%H` / `%l` | the host name / its first label (gethostname(2)) |
/// | `%m` | the machine ID (`ROOT/etc/machine-id`) |
/// | `%M` | os-release `IMAGE_ID` |
/// | `%o` | os-release `ID` |
/// | `%v` | the kernel release (uname(2)) |
/// | `%w` | os-release `VERSION_ID` |
/// | `%W` | os-release `VARIANT_ID` |
/// | `%T` / `%V` | `/tmp` / `/var/tmp` |
/// | `%%` | a single `%` |
///
/// An os-release field that is not set expands to the empty string, as in systemd. A value that
/// cannot be had at all (no machine ID yet) is an error naming the specifier.
public struct SpecifierValues: Equatable, Sendable {
    public var architecture: String
    public var osRelease: OSRelease
    public var machineID: String?
    public var bootID: String?
    public var hostname: String?
    public var kernelRelease: String?

    public init(architecture: String, osRelease: OSRelease, machineID: String? = nil, bootID: String? = nil,
                hostname: String? = nil, kernelRelease: String? = nil) {
        self.architecture = architecture
        self.osRelease = osRelease
        self.machineID = machineID
        self.bootID = bootID
        self.hostname = hostname
        self.kernelRelease = kernelRelease
    }

    /// The values for `host` under `root`: its machine ID from `ROOT/etc/machine-id` (nil when
    /// missing, empty or "uninitialized"), and the running kernel's boot ID, host name and release.
    public static func detect(root: String, host: Host) -> SpecifierValues {
        var values = SpecifierValues(architecture: host.architecture, osRelease: host.osRelease)
        if let rootFD = try? openRoot(root),
           let resolved = try? resolve(inside: rootFD.rawValue, "/etc/machine-id", rootName: root),
           let text = try? readResolvedFile(rootFD.rawValue, resolved, limit: 4096) {
            values.machineID = normalizedID(text)
        }
        if let text = try? readTextFile(at: AT_FDCWD, "/proc/sys/kernel/random/boot_id", limit: 4096) {
            values.bootID = normalizedID(text)
        }
        var buffer = [CChar](repeating: 0, count: 256)
        if gethostname(&buffer, buffer.count - 1) == 0 {
            let name = String(cString: buffer)
            values.hostname = name.isEmpty ? nil : name
        }
        var names = utsname()
        if uname(&names) == 0 {
            values.kernelRelease = withUnsafeBytes(of: names.release) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
        }
        return values
    }

    /// A machine or boot ID as systemd prints it: 32 lowercase hex digits, or nil if `text` is not one.
    static func normalizedID(_ text: String) -> String? {
        let digits = text.filter { $0 != "-" && !$0.isWhitespace }.lowercased()
        guard digits.utf8.count == 32, digits.utf8.allSatisfy({ $0.isHexDigit }), digits != String(repeating: "0", count: 32)
        else { return nil }
        return digits
    }
}

/// Why specifiers could not be expanded.
public struct SpecifierError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Expands systemd's `%` specifiers in `text` (systemd's `specifier_printf()` rules): `%%` is a
/// `%`; a known specifier is replaced by its value; an unknown letter or digit after `%` is an
/// error; `%` before any other character, or at the end, is kept as it is.
public func expandSpecifiers(_ text: String, _ values: SpecifierValues) throws(SpecifierError) -> String {
    var result = ""
    var percent = false
    for character in text {
        guard percent else {
            if character == "%" { percent = true } else { result.append(character) }
            continue
        }
        percent = false
        switch character {
        case "%": result.append("%")
        case "a": result += values.architecture
        case "A": result += values.osRelease["IMAGE_VERSION"] ?? ""
        case "B": result += values.osRelease["BUILD_ID"] ?? ""
        case "M": result += values.osRelease["IMAGE_ID"] ?? ""
        case "o": result += values.osRelease["ID"] ?? ""
        case "w": result += values.osRelease["VERSION_ID"] ?? ""
        case "W": result += values.osRelease["VARIANT_ID"] ?? ""
        case "T": result += "/tmp"
        case "V": result += "/var/tmp"
        case "m":
            guard let id = values.machineID else {
                throw SpecifierError(message: "%m: the root has no initialized machine ID (etc/machine-id)")
            }
            result += id
        case "b":
            guard let id = values.bootID else { throw SpecifierError(message: "%b: the boot ID cannot be read") }
            result += id
        case "H", "l":
            guard let name = values.hostname else { throw SpecifierError(message: "%\(character): no host name is set") }
            result += character == "H" ? name : String(name.prefix { $0 != "." })
        case "v":
            guard let release = values.kernelRelease else { throw SpecifierError(message: "%v: the kernel release is unknown") }
            result += release
        default:
            if character.isASCII, character.isLetter || character.isNumber {
                throw SpecifierError(message: "unknown specifier %\(character)")
            }
            result += "%" + String(character)
        }
    }
    if percent { result.append("%") }
    return result
}

extension UInt8 {
    var isHexDigit: Bool {
        isASCIIDigit || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f"))
            || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
