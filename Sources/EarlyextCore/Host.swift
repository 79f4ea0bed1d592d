import Glibc

/// Where extensions are being merged, as matched against an image's `SYSEXT_SCOPE=`.
public enum Scope: String, Sendable {
    case initrd, system, portable
}

/// What an extension is matched against: the os-release of the tree being extended, its scope and
/// the architecture earlyext runs on (in systemd's naming).
public struct Host: Equatable, Sendable {
    public var osRelease: OSRelease
    public var scope: Scope
    public var architecture: String

    public init(osRelease: OSRelease, scope: Scope, architecture: String) {
        self.osRelease = osRelease
        self.scope = scope
        self.architecture = architecture
    }
}

/// The largest os-release / extension-release file earlyext reads.
let releaseFileSizeLimit = 64 * 1024

extension Host {
    /// Reads the host identity under `root`:
    /// - os-release from `ROOT/etc/os-release`, else `ROOT/usr/lib/os-release` (symlinks resolved
    ///   inside the root; a dangling `etc/os-release` falls back, as in systemd);
    /// - scope `.initrd` iff `ROOT/etc/initrd-release` exists (systemd ≥ v259 looks inside --root too);
    /// - the architecture from uname(2), in systemd's naming (the raw machine name if unknown).
    /// Throws if neither os-release file exists, or the one found has no `ID=`.
    public static func detect(root: String) throws -> Host {
        let rootFD = try openRoot(root)
        let prefix = hostPrefix(forRoot: root)
        let rootName = "the root \(root)"

        var osRelease: OSRelease?
        var source = ""
        for path in ["/etc/os-release", "/usr/lib/os-release"] {
            do {
                let resolved = try resolve(inside: rootFD.rawValue, path, rootName: rootName)
                let text = try readResolvedFile(rootFD.rawValue, resolved, limit: releaseFileSizeLimit)
                osRelease = OSRelease.parse(text)
                source = prefix + path
                break
            } catch let failure as ResolveFailure where failure.isNotFound {
                continue
            } catch let failure as ResolveFailure {
                throw EarlyextError(.discovery, "cannot read \(prefix)\(path): \(failure.reason)")
            } catch {
                throw EarlyextError(.discovery, "cannot read \(prefix)\(path)", errno: error as? Errno)
            }
        }
        guard let osRelease else {
            throw EarlyextError(.discovery, "no os-release: neither \(prefix)/etc/os-release nor \(prefix)/usr/lib/os-release exists")
        }
        guard let id = osRelease["ID"], !id.isEmpty else {
            throw EarlyextError(.discovery, "\(source) has no ID= field")
        }

        let scope: Scope
        do {
            _ = try resolve(inside: rootFD.rawValue, "/etc/initrd-release", rootName: rootName)
            scope = .initrd
        } catch where error.isNotFound {
            scope = .system
        } catch {
            throw EarlyextError(.discovery, "cannot check \(prefix)/etc/initrd-release: \(error.reason)")
        }

        let machine = unameMachine()
        return Host(osRelease: osRelease, scope: scope,
                    architecture: systemdArchitecture(machine: machine) ?? machine)
    }

    /// `uname -m`.
    static func unameMachine() -> String {
        var names = utsname()
        _ = uname(&names)
        return withUnsafeBytes(of: names.machine) { raw in
            String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
    }

    /// The systemd architecture name (as in `ARCHITECTURE=` and `%a`) for a uname(2) machine name,
    /// or nil if systemd does not know it. Mirrors systemd's `uname_architecture()` table.
    public static func systemdArchitecture(machine: String) -> String? {
        switch machine {
        case "aarch64": return "arm64"
        case "aarch64_be": return "arm64-be"
        case "armv8l", "armv7ml", "armv7l", "armv6l", "armv5tl", "armv5tel", "armv5tejl", "armv4tl", "armv4l":
            return "arm"
        case "armv8b", "armv7mb", "armv7b", "armv6b", "armv5tejb", "armv5teb", "armv5tb", "armv4tb", "armv4b":
            return "arm-be"
        case "alpha": return "alpha"
        case "arc": return "arc"
        case "arceb": return "arc-be"
        case "crisv32": return "cris"
        case "x86_64": return "x86-64"
        case "i686", "i586", "i486", "i386": return "x86"
        case "x32": return "x32"
        case "ia64": return "ia64"
        case "parisc64": return "parisc64"
        case "parisc": return "parisc"
        case "loongarch64": return "loongarch64"
        case "m68k": return "m68k"
        case "mips64": return "mips64"
        case "mips": return "mips"
        case "nios2": return "nios2"
        case "ppc64le": return "ppc64-le"
        case "ppc64": return "ppc64"
        case "ppcle": return "ppc-le"
        case "ppc": return "ppc"
        case "riscv64": return "riscv64"
        case "riscv32": return "riscv32"
        case "riscv": return MemoryLayout<Int>.size == 8 ? "riscv64" : "riscv32"
        case "s390x": return "s390x"
        case "s390": return "s390"
        case "sh5": return "sh64"
        case "sh4a", "sh4", "sh3", "sh2a", "sh2": return "sh"
        case "sparc64": return "sparc64"
        case "sparc": return "sparc"
        case "tilegx": return "tilegx"
        default: return nil
        }
    }
}
