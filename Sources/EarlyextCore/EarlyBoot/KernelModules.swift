import CKmod
import CShim
import Glibc

/// Kernel modules shipped in extensions.
///
/// Each extension that ships modules also ships, or lacks, `modules.dep` and its friends, and in
/// an overlay the top layer's copy hides every other (Flatcar#1576). Flatcar works around it with
/// a modprobe `install` hook per module that runs depmod in a private overlay on every load.
/// earlyext does it once, at merge time: the system's depmod runs over a writable staging overlay
/// of the base and the extensions, whose upper directory is the metadata layer. So the complete,
/// fresh set of indexes for the merged tree lands on top, and nothing shadows it.
public enum KernelModules {
    /// What one extension contributes.
    public struct Contribution: Equatable, Sendable {
        /// Module names (file name without `.ko*`, `-` as `_`) for the running kernel.
        public var modules: [String]
        /// Other kernel versions the extension has modules for: left alone, and reported.
        public var otherKernels: [String]
        public var isEmpty: Bool { modules.isEmpty && otherKernels.isEmpty }
    }

    /// uname(2)'s release: in the initrd, the kernel the real system runs.
    public static func runningKernel() -> String {
        var name = utsname()
        guard uname(&name) == 0 else { return "" }
        return withUnsafeBytes(of: name.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }

    static let suffixes = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]

    /// The module name of a file name, or nil if it is not a module.
    static func moduleName(_ file: String) -> String? {
        guard let suffix = suffixes.first(where: { file.hasSuffix($0) }), file.count > suffix.count else { return nil }
        return String(file.dropLast(suffix.count)).replacingDashes()
    }

    /// Scans an extension's /usr layer (`usrLayer`, an O_PATH descriptor) for modules under
    /// lib/modules/KERNEL, and for other kernel versions under lib/modules.
    static func scan(usrLayer: Int32, kernel: String) -> Contribution {
        guard let modulesDir = try? openAt(usrLayer, "lib/modules", O_RDONLY | O_DIRECTORY | O_NOFOLLOW),
              let versions = try? directoryEntries(modulesDir.rawValue) else {
            return Contribution(modules: [], otherKernels: [])
        }
        var modules: [String] = []
        var others: [String] = []
        for version in versions.map(\.name).sorted() {
            var found: [String] = []
            collect(modulesDir.rawValue, version, depth: 0, into: &found)
            if version == kernel { modules = found.sorted() } else if !found.isEmpty { others.append(version) }
        }
        return Contribution(modules: modules, otherKernels: others)
    }

    /// Module files below `path` (relative to `dirfd`), at most 8 levels deep.
    static func collect(_ dirfd: Int32, _ path: String, depth: Int, into found: inout [String]) {
        guard depth < 8, let dir = try? openAt(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW),
              let entries = try? directoryEntries(dir.rawValue) else { return }
        for entry in entries {
            if entry.type == UInt8(DT_DIR) {
                collect(dirfd, path + "/" + entry.name, depth: depth + 1, into: &found)
            } else if let name = moduleName(entry.name) {
                found.append(name)
            }
        }
    }

    /// Runs depmod over the staging overlay (the merged /usr, writable into the metadata layer).
    /// depmod wants BASEDIR/lib/modules/KERNEL; BASEDIR is a scratch directory in `scratch`
    /// whose `lib` links to the staging overlay's.
    /// Returns depmod's complaints about single modules ("ERROR: failed to load symbols from
    /// …/bogus.ko: Exec format error"): depmod still succeeds, and the caller reports each.
    static func generateIndexes(staging: DetachedMount, kernel: String, scratch: String) throws -> [String] {
        guard let depmod = Subprocess.locate("depmod") else {
            throw EarlyextError(.mount, "depmod not found: cannot index the kernel modules extensions ship")
        }
        let base = scratch + "/.depmod-\(getpid())"
        do {
            try makeDirectories(base, mode: 0o700)
            _ = unlink(base + "/lib")
            _ = try valueOrErrno { symlink("/proc/\(getpid())/fd/\(staging.rawValue)/lib", base + "/lib") }
        } catch {
            throw EarlyextError(.mount, "cannot prepare \(base) for depmod", errno: error)
        }
        defer {
            _ = unlink(base + "/lib")
            _ = rmdir(base)
        }
        let outcome: Subprocess.Outcome
        do {
            outcome = try Subprocess(arguments: [depmod, "-a", "-b", base, kernel]).run()
        } catch {
            throw EarlyextError(.mount, "cannot run \(depmod)", errno: error as? Errno)
        }
        guard outcome.succeeded else {
            throw EarlyextError(.mount, "depmod failed (status \(outcome.status)): \(outcome.lastLine)")
        }
        // Paths in the messages go through the scratch link; show them relative to /usr.
        let prefix = base + "/"
        return outcome.output.split(separator: "\n").filter { $0.hasPrefix("depmod: ERROR:") }.map { line in
            String(line).replacingEvery(prefix, with: "/usr/")
        }
    }

    /// The modules (by name) that libkmod cannot resolve in the merged tree: kmod_new(3) on the
    /// overlay's lib/modules/KERNEL, kmod_module_new_from_lookup(3) for each name.
    static func unresolved(_ names: [String], overlay: DetachedMount, kernel: String) -> [String] {
        let directory = overlay.procPath + "/lib/modules/" + kernel
        guard let context = ee_kmod_new(directory, nil) else { return names }
        defer { ee_kmod_unref(context) }
        return names.filter { name in
            var list: OpaquePointer? = nil
            guard ee_kmod_module_new_from_lookup(context, name, &list) == 0, let list else { return true }
            defer { ee_kmod_module_unref_list(list) }
            guard let module = ee_kmod_module_get_module(list) else { return true }
            defer { ee_kmod_module_unref(module) }
            return ee_kmod_module_get_path(module) == nil
        }
    }
}

extension String {
    /// Every occurrence of `target` replaced (without Foundation or the regex runtime, which
    /// `replacing(_:with:)` would pull in: +1.4 MB).
    func replacingEvery(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while !rest.isEmpty {
            if rest.hasPrefix(target) {
                result += replacement
                rest = rest.dropFirst(target.count)
            } else {
                result.append(rest.removeFirst())
            }
        }
        return result
    }

    /// Module names treat `-` and `_` alike; kmod's canonical form uses `_`.
    func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
