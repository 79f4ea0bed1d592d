import Glibc

/// Runs a program to completion with posix_spawn(3) and waitpid(2): the system's own tools
/// (depmod, systemd-hwdb) do what they know best. stdout and stderr are captured together,
/// up to 64 KiB, for the one-line message when the program fails.
struct Subprocess {
    var arguments: [String]

    struct Outcome {
        var status: Int32
        var output: String
        var succeeded: Bool { status == 0 }
        /// The last non-empty line of the output, for messages.
        var lastLine: String {
            output.split(separator: "\n").last.map(String.init) ?? ""
        }
    }

    /// The first executable `name` in $PATH, then in the usual system directories (the initrd's
    /// PATH may be short, and a unit's may lack sbin).
    static func locate(_ name: String) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? ""
        for dir in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        where !dir.isEmpty && access(dir + "/" + name, X_OK) == 0 {
            return dir + "/" + name
        }
        return nil
    }

    func run() throws -> Outcome {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw Errno.current }
        _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC)
        let reader = FileDescriptor(adopting: pipeFDs[0])
        var writer: Int32? = pipeFDs[1]
        defer { if let writer { _ = close(writer) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)

        var pid = pid_t()
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let settings = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"]
        let environment: [UnsafeMutablePointer<CChar>?] = settings.map { strdup($0) } + [nil]
        defer { environment.forEach { free($0) } }
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, argv, environment)
        guard spawned == 0 else { throw Errno(rawValue: spawned) }
        _ = close(pipeFDs[1])
        writer = nil

        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(reader.rawValue, &buffer, buffer.count)
            if count > 0 {
                if output.count < 65536 { output += buffer[0..<count] }
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, spelled out (they are macros).
        let exited = (status & 0x7f) == 0
        return Outcome(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f),
                       output: String(decoding: output, as: UTF8.self))
    }
}
