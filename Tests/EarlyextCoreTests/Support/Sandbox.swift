import Foundation
import Glibc

/// Runs a privileged scenario: bash, in its own private mount namespace, with
/// `Tests/Privileged/lib.sh` sourced and `$EARLYEXT` naming the built binary. The scenario
/// prints `FACT key=value` lines that the tests assert on.
struct Sandbox {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// The `FACT key=value` lines.
        var facts: [String: String] {
            var result: [String: String] = [:]
            for line in stdout.split(separator: "\n") where line.hasPrefix("FACT ") {
                let body = line.dropFirst(5)
                guard let eq = body.firstIndex(of: "=") else { continue }
                result[String(body[..<eq])] = String(body[body.index(after: eq)...])
            }
            return result
        }
        subscript(_ key: String) -> String? { facts[key] }
    }

    static var isRoot: Bool { getuid() == 0 }

    /// The major version of the host's systemd-sysext, if it has one (and we are root).
    static let hostSysextVersion: Int? = {
        guard isRoot, let result = try? run("systemd-sysext --version | head -1", timeout: 30) else { return nil }
        return result.stdout.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }()

    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The binary under test: $EARLYEXT_BINARY, else the debug build, else the release build.
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["EARLYEXT_BINARY"] { return path }
        for candidate in [".build/debug/earlyext", ".build/release/earlyext"] {
            let path = packageRoot + "/" + candidate
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return packageRoot + "/.build/debug/earlyext"
    }()

    static func run(_ script: String, timeout: Int = 300) throws -> Result {
        let body = "source '\(packageRoot)/Tests/Privileged/lib.sh'\n" + script
        var environment = ProcessInfo.processInfo.environment
        environment["EARLYEXT"] = binary
        return try capture("/usr/bin/timeout",
                           ["-s", "KILL", String(timeout), "unshare", "-m", "--propagation", "private", "bash", "-c", body],
                           environment: environment)
    }

    /// Runs `executable` to completion and returns its status and output. Both pipes are read
    /// at once, so neither can fill up and stall the child.
    static func capture(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let done = DispatchSemaphore(value: 0)
        let errHandle = err.fileHandleForReading
        Thread.detachNewThread {
            errBox.data = errHandle.readDataToEndOfFile()
            done.signal()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        done.wait()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self))
    }
}
