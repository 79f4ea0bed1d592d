import Foundation
import Glibc
@testable import EarlyextCore

/// `Tests/Fetch/server.py` on 127.0.0.1, serving `root`. Stopped (SIGKILL) when released.
final class TestServer {
    let process = Process()
    let port: Int
    let root: String
    let scheme: String

    init(root: String, port: Int = 0, tls: (cert: String, key: String)? = nil) throws {
        self.root = root
        scheme = tls == nil ? "http" : "https"
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        var arguments = [Sandbox.packageRoot + "/Tests/Fetch/server.py", "--root", root, "--port", String(port)]
        if let tls { arguments += ["--tls", tls.cert, tls.key] }
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let number = Int(text.dropFirst(5).prefix { $0.isNumber }) else {
            process.terminate()
            throw Errno(rawValue: ECONNREFUSED)
        }
        self.port = number
    }

    deinit { stop() }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    func url(_ mode: String, _ file: String) -> String { "\(scheme)://127.0.0.1:\(port)/\(mode)/\(file)" }

    /// The server's request log: "GET PATH RANGE DIRECT|PROXIED" lines.
    func requests(caFile: String? = nil) throws -> [String] {
        var options = FetchOptions()
        options.caFile = caFile
        let data = try Fetcher(log: Log(level: .error), options: options).fetchData("\(scheme)://127.0.0.1:\(port)/_log")
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.contains("/_log") }
    }
}

/// `count` random bytes.
func randomBytes(_ count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    guard let fd = try? openPath("/dev/urandom", O_RDONLY) else { return bytes }
    var done = 0
    while done < count {
        let got = bytes.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress! + done, count - done) }
        if got > 0 { done += got }
    }
    return bytes
}

/// Writes `bytes` to `path` (host path), creating parent dirs.
func writeBytes(_ path: String, _ bytes: [UInt8]) throws {
    let (directory, _) = splitPath(path)
    try makeDirectories(directory)
    let fd = try openPath(path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
    try writeAll(fd.rawValue, bytes)
}

/// The whole file at `path`, or nil.
func readBytes(_ path: String) -> [UInt8]? {
    guard let fd = try? openPath(path, O_RDONLY) else { return nil }
    return try? readAll(fd.rawValue, limit: 1 << 30)
}

/// The names in a directory, sorted.
func listDirectory(_ path: String) -> [String] {
    guard let fd = try? openPath(path, O_RDONLY | O_DIRECTORY), let entries = try? directoryEntries(fd.rawValue) else { return [] }
    return entries.map(\.name).sorted()
}

/// Runs `script` with bash; returns (status, stdout + stderr).
@discardableResult
func runShell(_ script: String) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", script]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The SHA-256 of the file at `path` (nil if missing), so that a failed comparison prints a
/// digest rather than megabytes.
func digestOfFile(_ path: String) -> String? {
    readBytes(path).map { SHA256.hexDigest(of: $0) }
}
