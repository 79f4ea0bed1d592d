// bench/verity.sh's driver: times verifyImage (the user-space path of `earlyext verify`) on one
// image, as the library call the CLI makes. Built by bench/verity.sh against the release build.
//   verity-driver IMAGE ROOT [RUNS]  → one line per run: microseconds, then the verdict
import EarlyextCore
import Glibc

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e6 + Double(ts.tv_nsec) / 1e3
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    print("usage: verity-driver IMAGE ROOT [RUNS]")
    exit(2)
}
let runs = arguments.count > 3 ? Int(arguments[3]) ?? 1 : 1
let trust = try TrustStore.load(root: arguments[2])
let architecture = Host.systemdArchitecture(machine: "x86_64")!
for _ in 0..<runs {
    let start = now()
    let verdict = verifyImage(path: arguments[1], policy: .signed, trust: trust, architecture: architecture, activate: false)
    let end = now()
    print(Int(end - start), verdict.reason)
    if !verdict.accepted { exit(1) }
}
