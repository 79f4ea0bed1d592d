import CShim
import Glibc

// Resolving a path inside a root (a `--root` tree, or a mounted extension image) without ever leaving
// it. systemd's chase() with CHASE_PREFIX_ROOT clamps `..` at the root; earlyext is stricter: a path
// whose resolution would step above the root is refused, so that a planted symlink can never make
// us read (or later mount or overwrite) something outside the tree we were pointed at.
//
// Every component is looked up with fstatat(AT_SYMLINK_NOFOLLOW) relative to the root descriptor.
// Because each component already resolved is a real directory, the relative path built from them
// contains no symlinks, so only the component being examined can be one.

/// The most symlinks one resolution may follow (systemd's CHASE_MAX is 32 as well).
let maximumSymlinkHops = 32

/// Why a path could not be resolved inside its root.
enum ResolveFailure: Error, Equatable {
    /// Resolution would leave the root. The text names the link and its target.
    case escapes(String)
    /// More than `maximumSymlinkHops` links (a loop, most likely).
    case tooManyLinks(String)
    /// A lookup failed: the errno and the path inside the root where it failed.
    case system(Errno, String)

    var isNotFound: Bool {
        if case .system(let errno, _) = self { return errno == .noSuchFile }
        return false
    }

    /// One line, for reasons and error messages.
    var reason: String {
        switch self {
        case .escapes(let text), .tooManyLinks(let text): return text
        case .system(let errno, let path): return "\(path): \(errno)"
        }
    }
}

/// A path resolved inside a root: real directories all the way down, and a final inode that is not
/// a symlink.
struct ResolvedPath {
    /// The physical components below the root.
    var components: [String]
    /// lstat(2) of the final component.
    var status: stat

    /// The path inside the root, absolute: "/usr/lib/os-release".
    var path: String { "/" + components.joined(separator: "/") }
    /// The same path relative to the root descriptor, for the *at() calls.
    var relative: String { components.isEmpty ? "." : components.joined(separator: "/") }

    var isDirectory: Bool { ee_s_isdir(status.st_mode) != 0 }
    var isRegularFile: Bool { ee_s_isreg(status.st_mode) != 0 }
    var isBlockDevice: Bool { ee_s_isblk(status.st_mode) != 0 }
}

/// Resolves `path` inside the directory open as `rootFD`. Relative symlink targets resolve from the
/// link's directory, absolute ones from the root; `..` never goes above the root.
/// `rootName` only appears in messages ("the root /sysroot", "the image").
func resolve(inside rootFD: Int32, _ path: String, rootName: String) throws(ResolveFailure) -> ResolvedPath {
    if let direct = try resolveDirectly(inside: rootFD, path) { return direct }
    return try resolveByWalking(inside: rootFD, path, rootName: rootName)
}

/// `resolve(inside:)` one component at a time, each looked up with fstatat(AT_SYMLINK_NOFOLLOW).
func resolveByWalking(inside rootFD: Int32, _ path: String, rootName: String) throws(ResolveFailure) -> ResolvedPath {
    // A stack of components still to walk; the next one is last.
    var pending = path.split(separator: "/").reversed().map(String.init)
    var done: [String] = []
    var hops = 0
    var lastLink: (link: String, target: String)?

    func lookup(_ components: [String]) throws(ResolveFailure) -> stat {
        let relative = components.isEmpty ? "." : components.joined(separator: "/")
        do {
            return try statAt(rootFD, relative, flags: AT_SYMLINK_NOFOLLOW)
        } catch {
            throw .system(error, "/" + components.joined(separator: "/"))
        }
    }

    var status = try lookup([])
    while let component = pending.popLast() {
        if component == "." { continue }
        if component == ".." {
            guard !done.isEmpty else {
                if let lastLink {
                    throw .escapes("symlink \(lastLink.link) -> \(lastLink.target) escapes \(rootName)")
                }
                throw .escapes("path \(path) leads above \(rootName)")
            }
            done.removeLast()
            status = try lookup(done)
            continue
        }
        guard ee_s_isdir(status.st_mode) != 0 else {
            throw .system(.notDirectory, "/" + done.joined(separator: "/"))
        }
        let next = done + [component]
        let nextStatus = try lookup(next)
        guard ee_s_islnk(nextStatus.st_mode) != 0 else {
            done = next
            status = nextStatus
            continue
        }
        hops += 1
        let linkPath = "/" + next.joined(separator: "/")
        guard hops <= maximumSymlinkHops else {
            throw .tooManyLinks("more than \(maximumSymlinkHops) symlinks resolving \(path) inside \(rootName) (loop at \(linkPath))")
        }
        let target: String
        do {
            target = try readLinkAt(rootFD, next.joined(separator: "/"))
        } catch {
            throw .system(error, linkPath)
        }
        if target.isEmpty { throw .system(.noSuchFile, linkPath) }
        lastLink = (linkPath, target)
        if target.hasPrefix("/") {
            done = []
            status = try lookup(done)
        }
        pending.append(contentsOf: target.split(separator: "/").reversed().map(String.init))
    }
    return ResolvedPath(components: done, status: status)
}

/// The common case in one call: a path with no symlink and no `..` in it needs no walk, and
/// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS resolves exactly those (a symlink
/// anywhere is ELOOP, a step above the root EXDEV). Found, or not found, is then the answer the
/// walk would give; anything else (a symlink, ENOSYS, ENOTDIR…) is left to the walk: nil.
func resolveDirectly(inside rootFD: Int32, _ path: String) throws(ResolveFailure) -> ResolvedPath? {
    let components = path.split(separator: "/").filter { $0 != "." }.map(String.init)
    guard components.count >= 2, !components.contains("..") else { return nil }
    let relative = components.joined(separator: "/")
    do {
        // Without O_NOFOLLOW: a symlink as the last component is ELOOP too.
        let fd = try openAt2(rootFD, relative, ee_O_PATH,
                             resolve: ee_RESOLVE_BENEATH | ee_RESOLVE_NO_SYMLINKS | ee_RESOLVE_NO_MAGICLINKS)
        guard let status = try? statAt(fd.rawValue, "", flags: ee_AT_EMPTY_PATH), ee_s_islnk(status.st_mode) == 0 else {
            return nil
        }
        return ResolvedPath(components: components, status: status)
    } catch where error == .noSuchFile {
        // No symlink on the way: the walk fails at the first missing component. When the parent
        // is there, that is the last one, and the walk's answer is known.
        guard let parent = try? statAt(rootFD, components.dropLast().joined(separator: "/"), flags: AT_SYMLINK_NOFOLLOW),
              ee_s_isdir(parent.st_mode) != 0 else { return nil }
        throw .system(.noSuchFile, "/" + relative)
    } catch {
        return nil
    }
}

/// "/sysroot/" → "/sysroot", "/" → "": what to put in front of an in-root path to get a host path.
func hostPrefix(forRoot root: String) -> String {
    var prefix = Substring(root)
    while prefix.hasSuffix("/") { prefix = prefix.dropLast() }
    return String(prefix)
}

/// Opens `root` as an O_PATH directory descriptor, for `resolve(inside:)`.
func openRoot(_ root: String) throws -> FileDescriptor {
    do {
        return try openPath(root.isEmpty ? "/" : root, O_PATH | O_DIRECTORY)
    } catch {
        throw EarlyextError(.discovery, "cannot open root directory \(root)", errno: error)
    }
}

/// Reads the regular file at `resolved` (from `resolve(inside:)`) without following a symlink
/// that might have replaced it since, at most `limit` bytes.
func readResolvedFile(_ rootFD: Int32, _ resolved: ResolvedPath, limit: Int) throws(Errno) -> String {
    let fd = try openAt(rootFD, resolved.relative, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK)
    guard ee_s_isreg(try statDescriptor(fd.rawValue).st_mode) != 0 else { throw Errno.invalid }
    return String(decoding: try readAll(fd.rawValue, limit: limit), as: UTF8.self)
}

/// Resolves `path` inside `root` the way discovery does (see above) and returns the real host path:
/// ROOT followed by the resolved path. Throws an `EarlyextError` with a one-line reason when the
/// resolution would leave the root, loops, or a component is missing (errno ENOENT).
public func resolveInsideRoot(root: String, path: String) throws -> String {
    let rootFD = try openRoot(root)
    let rootName = "the root \(root)"
    do {
        return hostPrefix(forRoot: root) + (try resolve(inside: rootFD.rawValue, path, rootName: rootName)).path
    } catch {
        switch error {
        case .escapes(let text):
            throw EarlyextError(.discovery, text)
        case .tooManyLinks(let text):
            throw EarlyextError(.discovery, text, errno: .tooManyLinks)
        case .system(let errno, let at):
            throw EarlyextError(.discovery, "cannot resolve \(path) inside \(rootName) (at \(at))", errno: errno)
        }
    }
}
