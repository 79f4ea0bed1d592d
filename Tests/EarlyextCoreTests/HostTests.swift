import Glibc
import Testing
@testable import EarlyextCore

@Suite struct HostTests {
    @Test(arguments: [
        ("x86_64", "x86-64"), ("i686", "x86"), ("i386", "x86"), ("x32", "x32"),
        ("aarch64", "arm64"), ("aarch64_be", "arm64-be"), ("armv7l", "arm"), ("armv6l", "arm"), ("armv7b", "arm-be"),
        ("ppc64le", "ppc64-le"), ("ppc64", "ppc64"), ("ppcle", "ppc-le"),
        ("riscv64", "riscv64"), ("riscv32", "riscv32"), ("s390x", "s390x"), ("s390", "s390"),
        ("loongarch64", "loongarch64"), ("mips64", "mips64"), ("parisc64", "parisc64"),
        ("sh4a", "sh"), ("sh5", "sh64"), ("sparc64", "sparc64"), ("alpha", "alpha"), ("arceb", "arc-be"),
        ("crisv32", "cris"), ("ia64", "ia64"), ("m68k", "m68k"), ("nios2", "nios2"), ("tilegx", "tilegx"),
    ])
    func architectureNames(machine: String, systemd: String) {
        #expect(Host.systemdArchitecture(machine: machine) == systemd)
    }

    @Test(arguments: ["", "x86-64", "amd64", "arm64", "X86_64", "pdp11"])
    func unknownMachines(machine: String) {
        #expect(Host.systemdArchitecture(machine: machine) == nil)
    }

    @Test func architectureComesFromUname() throws {
        let fixture = try Fixture()
        try fixture.file("etc/os-release", "ID=debian\n")
        let host = try Host.detect(root: fixture.root)
        #expect(host.architecture == Host.systemdArchitecture(machine: Host.unameMachine()))
        #if arch(x86_64)
        #expect(host.architecture == "x86-64")
        #elseif arch(arm64)
        #expect(host.architecture == "arm64")
        #endif
    }

    @Test func etcWinsOverUsrLib() throws {
        let fixture = try Fixture()
        try fixture.file("etc/os-release", "ID=frometc\nVERSION_ID=1\n")
        try fixture.file("usr/lib/os-release", "ID=fromusr\nVERSION_ID=2\n")
        let host = try Host.detect(root: fixture.root)
        #expect(host.osRelease["ID"] == "frometc")
        #expect(host.osRelease["VERSION_ID"] == "1")
        #expect(host.scope == .system)
    }

    @Test func usrLibIsTheFallback() throws {
        let fixture = try Fixture()
        try fixture.directory("etc")
        try fixture.file("usr/lib/os-release", "ID=fromusr\n")
        #expect(try Host.detect(root: fixture.root).osRelease["ID"] == "fromusr")
    }

    @Test(arguments: ["../usr/lib/os-release", "/usr/lib/os-release"])
    func etcSymlinkResolvesInsideTheRoot(target: String) throws {
        let fixture = try Fixture()
        try fixture.file("usr/lib/os-release", "ID=linked\n")
        try fixture.link("etc/os-release", to: target)
        #expect(try Host.detect(root: fixture.root + "/").osRelease["ID"] == "linked")
    }

    @Test func danglingEtcSymlinkFallsBack() throws {
        let fixture = try Fixture()
        try fixture.link("etc/os-release", to: "/nowhere/os-release")
        try fixture.file("usr/lib/os-release", "ID=fallback\n")
        #expect(try Host.detect(root: fixture.root).osRelease["ID"] == "fallback")
    }

    @Test func escapingSymlinkIsAnError() throws {
        let fixture = try Fixture()
        try fixture.link("etc/os-release", to: "../../../../../../../etc/os-release")
        try fixture.file("usr/lib/os-release", "ID=fallback\n")
        let error = try #require(throws: EarlyextError.self) { try Host.detect(root: fixture.root) }
        #expect(error.description.contains("escapes the root"))
    }

    @Test func missingBothNamesBoth() throws {
        let fixture = try Fixture()
        try fixture.directory("etc")
        let error = try #require(throws: EarlyextError.self) { try Host.detect(root: fixture.root) }
        #expect(error.description.contains("\(fixture.root)/etc/os-release"))
        #expect(error.description.contains("\(fixture.root)/usr/lib/os-release"))
    }

    @Test func osReleaseWithoutIDIsAnError() throws {
        let fixture = try Fixture()
        try fixture.file("usr/lib/os-release", "NAME=Nameless\n")
        let error = try #require(throws: EarlyextError.self) { try Host.detect(root: fixture.root) }
        #expect(error.description.contains("no ID="))
    }

    @Test func initrdReleaseMeansInitrdScope() throws {
        let fixture = try Fixture()
        try fixture.file("usr/lib/os-release", "ID=debian\n")
        try fixture.file("etc/initrd-release", "ID=debian\n")
        #expect(try Host.detect(root: fixture.root).scope == .initrd)
    }

    @Test func initrdReleaseSymlinkCounts() throws {
        let fixture = try Fixture()
        try fixture.file("usr/lib/os-release", "ID=debian\n")
        try fixture.link("etc/initrd-release", to: "/usr/lib/os-release")
        #expect(try Host.detect(root: fixture.root).scope == .initrd)
    }

    @Test func missingRootIsAnError() throws {
        let fixture = try Fixture()
        #expect(throws: EarlyextError.self) { try Host.detect(root: fixture.path("absent")) }
    }
}
