import Testing
import Foundation

/// Kernel modules and hwdb shipped by extensions: the merged tree gets fresh indexes, on top of
/// everything, so nothing shadows (Flatcar#1576). Real .ko files come from the kernel package the
/// boot suite downloads (boot/build-kernel.sh, cached in ~/.cache/earlyext).
@Suite(.enabled(if: Sandbox.isRoot, "needs root: loop devices and mounts (skipped when not root)"), .serialized)
struct EarlyBootTests {
    /// The unpacked kernel's lib/modules/KVER directory.
    static let kernelModules: String? = {
        if let dir = ProcessInfo.processInfo.environment["EARLYEXT_TEST_KERNEL_MODULES"] { return dir }
        let cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/earlyext").path
        let kernels = (try? FileManager.default.contentsOfDirectory(atPath: cache))?.filter { $0.hasPrefix("kernel-") } ?? []
        for kernel in kernels.sorted() {
            let modules = cache + "/" + kernel + "/lib/modules"
            if let version = try? FileManager.default.contentsOfDirectory(atPath: modules).first,
               FileManager.default.fileExists(atPath: modules + "/" + version + "/kernel/drivers/net/dummy.ko.xz") {
                return modules + "/" + version
            }
        }
        return nil
    }()

    /// A root whose base has its own module (veth) and indexes, and extensions that ship: a module
    /// (dummy) for the running kernel; a stale modules.dep naming a module that does not exist;
    /// modules for another kernel.
    static let setup = #"""
    KV=$(uname -r)
    make_root
    ln -s usr/lib "$R/lib"
    base=$R/usr/lib/modules/$KV
    mkdir -p "$base/kernel/drivers/net"
    cp "$KM/kernel/drivers/net/veth.ko.xz" "$base/kernel/drivers/net/"
    echo kernel/drivers/net/veth.ko > "$base/modules.order"; : > "$base/modules.builtin"; : > "$base/modules.builtin.modinfo"
    depmod -b "$R" "$KV"
    ext_tree netmods; mkdir -p "$W/netmods/usr/lib/modules/$KV/extra"
    cp "$KM/kernel/drivers/net/dummy.ko.xz" "$W/netmods/usr/lib/modules/$KV/extra/"
    echo 'extra/dummy.ko.xz:' > "$W/netmods/usr/lib/modules/$KV/modules.dep"
    ext_tree stale; mkdir -p "$W/stale/usr/lib/modules/$KV"
    echo 'extra/ghost.ko:' > "$W/stale/usr/lib/modules/$KV/modules.dep"; head -c 64 /dev/urandom > "$W/stale/usr/lib/modules/$KV/modules.dep.bin"
    ext_tree oldkernel; mkdir -p "$W/oldkernel/usr/lib/modules/5.10.0-old/extra"
    cp "$KM/kernel/drivers/net/dummy.ko.xz" "$W/oldkernel/usr/lib/modules/5.10.0-old/extra/"
    """#

    static func resolves(_ name: String) -> String {
        "modprobe -d \"$R\" -S \"$KV\" --show-depends \(name) 2>/dev/null | grep -o '[a-z/]*/[a-z_]*\\.ko[.a-z]*' | sed 's|^/||' | tr '\\n' ' '"
    }

    @Test(.enabled(if: kernelModules != nil, "needs the boot suite's kernel package: run boot/build-kernel.sh"))
    func modulesFromExtensionsResolveAndNothingShadows() throws {
        let r = try Sandbox.run("KM='\(Self.kernelModules!)'\n" + Self.setup + "\n" + #"""
        pack netmods squashfs; pack stale squashfs; pack oldkernel erofs
        ee merge 2> "$W/err"
        fact dummy "$(\#(Self.resolves("dummy")))"
        fact alias "$(\#(Self.resolves("rtnl-link-dummy")))"
        fact veth "$(\#(Self.resolves("veth")))"
        fact ghost "$(grep -c ghost "$R/usr/lib/modules/$KV/modules.dep" || true)"
        fact unresolved "$(grep -c 'cannot resolve' "$W/err" || true)"
        fact other "$(grep -c '5.10.0-old.*left alone' "$W/err" || true)"
        ee status --json > "$W/status.json"
        fact status_modules "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); e={x["name"]: x for x in d["extensions"]}; print(e["netmods"].get("modules"), e["oldkernel"].get("modules_other_kernels"), e["stale"].get("modules"))' "$W/status.json")"
        fact stack "$(stack_at "$R/usr")"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["dummy"] == "extra/dummy.ko.xz ")
        #expect(r["alias"] == "extra/dummy.ko.xz ", "the alias index is fresh too")
        #expect(r["veth"] == "kernel/drivers/net/veth.ko.xz ", "the base's modules still resolve")
        #expect(r["ghost"] == "0", "the stale modules.dep is shadowed by the fresh one")
        #expect(r["unresolved"] == "0")
        #expect(r["other"] == "1")
        #expect(r["status_modules"] == "['dummy'] ['5.10.0-old'] None")
        #expect(r["stack"] == "overlay")
    }

    /// A non-ELF .ko, and one that cannot be opened (a dangling link): each is reported, and the
    /// merge goes on.
    @Test(.enabled(if: kernelModules != nil, "needs the boot suite's kernel package: run boot/build-kernel.sh"))
    func badModulesAreReportedAndTheMergeGoesOn() throws {
        let r = try Sandbox.run("KM='\(Self.kernelModules!)'\n" + Self.setup + "\n" + #"""
        head -c 4096 /dev/urandom > "$W/netmods/usr/lib/modules/$KV/extra/bogus.ko"
        ln -s /nonexistent/locked.ko.xz "$W/netmods/usr/lib/modules/$KV/extra/locked.ko.xz"
        mkdir -p "$R/etc/extensions"; mksquashfs "$W/netmods" "$R/etc/extensions/netmods.raw" -noappend -quiet -no-progress >/dev/null
        set +e; ee merge 2> "$W/err"; fact status $?; set -e
        fact bogus "$(grep -c 'bogus.ko' "$W/err" || true)"
        fact locked "$(grep -c 'locked.ko' "$W/err" || true)"
        fact dummy "$(\#(Self.resolves("dummy")))"
        fact stack "$(stack_at "$R/usr")"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["status"] == "0")
        #expect((Int(r["bogus"] ?? "0") ?? 0) >= 1, "the non-ELF module is reported")
        #expect((Int(r["locked"] ?? "0") ?? 0) >= 1, "the unreadable module is reported")
        #expect(r["dummy"] == "extra/dummy.ko.xz ")
        #expect(r["stack"] == "overlay")
    }

    /// hwdb entries shipped by an extension end up in a fresh hwdb.bin, next to the base's.
    @Test func hwdbEntriesFromExtensionsAreCompiled() throws {
        let r = try Sandbox.run(#"""
        make_root
        ln -s usr/lib "$R/lib"
        mkdir -p "$R/usr/lib/udev/hwdb.d"
        printf 'usb:v1D6Bp0001*\n ID_EARLYEXT_BASE=yes\n' > "$R/usr/lib/udev/hwdb.d/60-base.hwdb"
        systemd-hwdb update --root "$R" --usr
        ext_tree hw; mkdir -p "$W/hw/usr/lib/udev/hwdb.d"
        printf 'usb:v1D6Bp0002*\n ID_EARLYEXT_EXT=yes\n' > "$W/hw/usr/lib/udev/hwdb.d/70-earlyext.hwdb"
        pack hw squashfs
        ee merge 2> "$W/err"
        fact ext "$(systemd-hwdb query --root "$R" 'usb:v1D6Bp0002' 2>/dev/null | tr '\n' ' ')"
        fact base "$(systemd-hwdb query --root "$R" 'usb:v1D6Bp0001' 2>/dev/null | tr '\n' ' ')"
        fact said "$(grep -c 'hwdb.bin regenerated' "$W/err" || true)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["ext"] == "ID_EARLYEXT_EXT=yes ")
        #expect(r["base"] == "ID_EARLYEXT_BASE=yes ")
        #expect(r["said"] == "1")
    }
}
