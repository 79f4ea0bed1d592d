import Glibc

/// A C `errno` value, as thrown by the syscall wrappers in `SystemCalls.swift`.
public struct Errno: Error, Equatable, Hashable, CustomStringConvertible, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(rawValue: errno) }

    public static let noSuchFile = Errno(rawValue: ENOENT)
    public static let interrupted = Errno(rawValue: EINTR)
    public static let busy = Errno(rawValue: EBUSY)
    public static let invalid = Errno(rawValue: EINVAL)
    public static let permission = Errno(rawValue: EPERM)
    public static let accessDenied = Errno(rawValue: EACCES)
    public static let exists = Errno(rawValue: EEXIST)
    public static let notDirectory = Errno(rawValue: ENOTDIR)
    public static let tooManyLinks = Errno(rawValue: ELOOP)
    public static let noDevice = Errno(rawValue: ENODEV)
    public static let notSupported = Errno(rawValue: EOPNOTSUPP)
    public static let noData = Errno(rawValue: ENODATA)
    public static let crossDevice = Errno(rawValue: EXDEV)
    public static let noSpace = Errno(rawValue: ENOSPC)

    /// `strerror(3)`.
    public var description: String { String(cString: strerror(rawValue)) }
}

/// The one error type earlyext reports. `code` says which stage failed, `errno` carries the
/// underlying system error when there is one, and `description` is the single line a user sees.
public struct EarlyextError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case usage          // bad command line
        case config         // a configuration file is malformed
        case discovery      // the search dirs could not be read
        case invalidImage   // an image is not usable (format, release file, host match)
        case mount          // attaching, mounting or building the overlay failed
        case publish        // swapping the merge into place failed
        case state          // reading or writing the state record failed
        case fetch          // downloading or installing an image failed
        case system         // anything else the kernel refused
        case requiredFailed // a Required=yes extension could not be merged
    }

    public var code: Code
    public var errno: Errno?
    public var message: String

    public init(_ code: Code, _ message: String, errno: Errno? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String {
        if let errno { return "\(message): \(errno)" }
        return message
    }
}

extension EarlyextError {
    /// Wraps a thrown `Errno` (or passes an `EarlyextError` through) with what was being done.
    static func wrapping(_ error: Error, _ code: Code, _ message: String) -> EarlyextError {
        if let e = error as? EarlyextError { return e }
        return EarlyextError(code, message, errno: error as? Errno)
    }
}
