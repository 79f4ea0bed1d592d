import CShim
import Glibc

/// What reading an image's extension-release file found.
public enum ReleaseLookup: Equatable, Sendable {
    /// The parsed file and its path inside the image.
    case found(OSRelease, file: String)
    /// No usable extension-release file; the text says what was looked for.
    case missing(String)
    /// The image must not be used (it carries an OS identity, a link leaves the image, …).
    case refused(String)
}

let extensionReleaseDirectory = "/usr/lib/extension-release.d"
let strictAttribute = "user.extension-release.strict"

/// Reads the extension-release file of the image whose root directory is open as `imageRoot`
/// (a directory extension, or a mounted image), as systemd's `open_extension_release()` does:
/// - an image containing `usr/lib/os-release` is refused;
/// - `usr/lib/extension-release.d/extension-release.NAME` is used if it exists;
/// - otherwise exactly one other `extension-release.*` regular file in that directory whose xattr
///   `user.extension-release.strict` parses as false; none or several such files → missing.
/// Paths are resolved inside the image: a symlink leaving it is refused. Files are read up to 64 KiB.
///
/// `usrRoot`: the image's root is its /usr (a DDI with a `usr` partition), so `/usr/lib/…` is
/// looked up as `/lib/…`. Messages keep the `/usr/…` names.
public func readExtensionRelease(imageRoot: Int32, name: String, usrRoot: Bool = false) -> ReleaseLookup {
    let image = "the image"
    guard isValidImageName(name) else { return .refused("invalid extension name '\(name)'") }
    let inImage = { (path: String) in usrRoot && path.hasPrefix("/usr/") ? String(path.dropFirst(4)) : path }

    do {
        _ = try resolve(inside: imageRoot, inImage("/usr/lib/os-release"), rootName: image)
        return .refused("image contains /usr/lib/os-release; an extension must not carry an OS identity")
    } catch where error.isNotFound {
        // As it should be.
    } catch {
        return .refused("cannot check for /usr/lib/os-release: \(error.reason)")
    }

    let expected = "\(extensionReleaseDirectory)/extension-release.\(name)"
    do {
        let resolved = try resolve(inside: imageRoot, inImage(expected), rootName: image)
        return readRelease(imageRoot, resolved, shownAs: expected)
    } catch where error.isNotFound {
        return fallbackRelease(imageRoot, expected: expected, directoryInImage: inImage(extensionReleaseDirectory))
    } catch {
        return .refused("cannot read \(expected): \(error.reason)")
    }
}

/// Reads and parses a resolved extension-release file, refusing anything but a small regular file.
private func readRelease(_ imageRoot: Int32, _ resolved: ResolvedPath, shownAs path: String) -> ReleaseLookup {
    guard resolved.isRegularFile else { return .refused("\(path) is not a regular file") }
    do {
        let text = try readResolvedFile(imageRoot, resolved, limit: releaseFileSizeLimit)
        return .found(OSRelease.parse(text), file: resolved.path)
    } catch where error.rawValue == EFBIG {
        return .refused("\(path) is larger than \(releaseFileSizeLimit / 1024) KiB")
    } catch {
        return .refused("cannot read \(path): \(error)")
    }
}

/// The fallback for images whose file name was changed on deployment: the one extension-release
/// file whose author marked it `user.extension-release.strict=false`.
private func fallbackRelease(_ imageRoot: Int32, expected: String, directoryInImage: String) -> ReleaseLookup {
    let missing = "no extension-release file: \(expected) does not exist"
    let directory: ResolvedPath
    do {
        directory = try resolve(inside: imageRoot, directoryInImage, rootName: "the image")
    } catch where error.isNotFound {
        return .missing(missing)
    } catch {
        return .refused("cannot open \(extensionReleaseDirectory): \(error.reason)")
    }
    guard directory.isDirectory else { return .missing(missing) }

    var relaxed: [String] = []
    do {
        let directoryFD = try openAt(imageRoot, directory.relative, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        for entry in try directoryEntries(directoryFD.rawValue).map(\.name).sorted() {
            guard entry.hasPrefix("extension-release."),
                  isValidImageName(String(entry.dropFirst("extension-release.".count))),
                  isStrictMatchingDisabled(directoryFD.rawValue, entry)
            else { continue }
            relaxed.append(entry)
        }
    } catch {
        return .refused("cannot list \(extensionReleaseDirectory): \(error)")
    }

    switch relaxed.count {
    case 0:
        return .missing("\(missing) and no other extension-release file has \(strictAttribute)=false")
    case 1:
        let path = "\(directory.path)/\(relaxed[0])"
        do {
            return readRelease(imageRoot, try resolve(inside: imageRoot, path, rootName: "the image"), shownAs: path)
        } catch {
            return .refused("cannot read \(path): \(error.reason)")
        }
    default:
        return .missing("\(missing) and \(relaxed.count) files have \(strictAttribute)=false (ambiguous: \(relaxed.joined(separator: ", ")))")
    }
}

/// True if `entry` in the directory is a regular file (not a symlink) whose
/// `user.extension-release.strict` xattr is a boolean false. Absent or unparsable → false.
private func isStrictMatchingDisabled(_ directoryFD: Int32, _ entry: String) -> Bool {
    guard let fd = try? openAt(directoryFD, entry, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY) else { return false }
    guard let status = try? statDescriptor(fd.rawValue), ee_s_isreg(status.st_mode) != 0 else { return false }
    guard let value = (try? extendedAttribute(fd.rawValue, strictAttribute)) ?? nil else { return false }
    let text = String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
    return parseBoolean(text) == false
}

/// systemd's `parse_boolean()`: 1/yes/y/true/t/on and 0/no/n/false/f/off, any case; else nil.
func parseBoolean(_ text: String) -> Bool? {
    switch text.lowercased() {
    case "1", "yes", "y", "true", "t", "on": return true
    case "0", "no", "n", "false", "f", "off": return false
    default: return nil
    }
}

/// The hierarchies (`/usr`, `/opt`) the image has content for. systemd's sysext merges an image into
/// a hierarchy only if the hierarchy, resolved inside the image, is a directory that is not empty
/// (`dir_is_empty(…, ignore_hidden_or_backup=false)`: any entry counts, hidden ones too).
///
/// `usrRoot`: the image's root is its /usr (a `usr` DDI partition): it can only fill /usr.
public func hierarchiesPresent(imageRoot: Int32, usrRoot: Bool = false) -> [String] {
    (usrRoot ? ["/usr"] : ["/usr", "/opt"]).filter { hierarchy in
        guard let resolved = try? resolve(inside: imageRoot, usrRoot ? "/" : hierarchy, rootName: "the image"),
              resolved.isDirectory,
              let fd = try? openAt(imageRoot, resolved.relative, O_RDONLY | O_DIRECTORY | O_NOFOLLOW),
              let populated = try? directoryHasEntries(fd.rawValue)
        else { return false }
        return populated
    }
}
