// swift-tools-version:6.0
import PackageDescription

// earlyext: merge system extensions in the initramfs, atomically, before switch-root.
//
// Targets, from the bottom up:
//   CShim          fixed-arity C wrappers for syscalls Swift cannot call (variadic syscall(),
//                  ioctl) and #ifndef fallbacks for constants newer than Debian 12's headers.
//   CMount         libmount + libblkid (mount table, filesystem probing).
//   CKmod          libkmod (checking that modules shipped in extensions resolve).
//   CCurl, CCrypto libcurl (fetching) and OpenSSL's libcrypto (SHA-256 while streaming).
//   EarlyextCore   everything testable: parsing, discovery, plan, mount engine, commands.
//   earlyext       the thin executable.
let package = Package(
    name: "earlyext",
    products: [
        .executable(name: "earlyext", targets: ["earlyext"]),
        .library(name: "EarlyextCore", targets: ["EarlyextCore"]),
    ],
    targets: [
        .target(name: "CShim"),
        .systemLibrary(
            name: "CMount",
            pkgConfig: "mount",
            providers: [.apt(["libmount-dev", "libblkid-dev"])]
        ),
        .systemLibrary(
            name: "CKmod",
            // No pkgConfig: its -lkmod would load libkmod (and zstd, lzma) at every start; it is
            // dlopen()ed when first needed (shim.h).
            providers: [.apt(["libkmod-dev"])]
        ),
        .target(
            name: "EarlyextCore",
            dependencies: ["CShim", "CMount", "CKmod", "CCurl", "CCrypto", "CCryptsetup"],
            swiftSettings: [.unsafeFlags(["-Osize"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "earlyext",
            dependencies: ["EarlyextCore"]
        ),
        // Fetching (docs/fetch.md): libcurl for HTTP(S), OpenSSL's libcrypto for SHA-256.
        .systemLibrary(
            name: "CCurl",
            // No pkgConfig: its -lcurl would load libcurl at every start; it is dlopen()ed (shim.h).
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // Verification (docs/verity.md): libcryptsetup activates dm-verity devices.
        .systemLibrary(
            name: "CCryptsetup",
            // No pkgConfig: libcryptsetup is dlopen()ed on first use (shim.h).
            providers: [.apt(["libcryptsetup-dev"])]
        ),
        .testTarget(
            name: "EarlyextCoreTests",
            dependencies: ["EarlyextCore"],
            resources: []
        ),
    ],
    swiftLanguageModes: [.v5]
)
