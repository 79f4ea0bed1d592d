import Testing
@testable import EarlyextCore

struct CoexistenceUnitTests {
    @Test(arguments: [
        ([], true, true, Coexistence.ReloadAction.none),
        (["a"], true, false, .notNeeded(["a"])),
        (["a", "b"], true, true, .notNeeded(["a", "b"])),
        (["a"], false, true, .daemonReload(["a"])),
        (["a"], false, false, .otherRoot(["a"])),
    ])
    func reloadAction(names: [String], inInitrd: Bool, rootIsSlash: Bool, expected: Coexistence.ReloadAction) {
        #expect(Coexistence.reloadAction(asking: names, inInitrd: inInitrd, rootIsSlash: rootIsSlash) == expected)
    }

    @Test(arguments: [("1", true), ("yes", true), ("TRUE", true), ("on", true), ("0", false), ("no", false),
                      ("", false), ("2", false), ("maybe", false)])
    func reloadValueIsABoolean(value: String, expected: Bool) {
        #expect(Coexistence.asksForReload(value) == expected)
    }

    @Test func dropInSkipsTheServiceWhileEarlyextsStateExists() {
        let text = Coexistence.dropIn(stateDir: "/run/earlyext")
        #expect(text.split(separator: "\n").contains("ConditionPathExists=!/run/earlyext/state.json"))
        #expect(text.split(separator: "\n").contains("[Unit]"))
    }
}

@Suite(.enabled(if: Sandbox.isRoot, "needs root: loop devices and mounts (skipped when not root)"), .serialized)
struct CoexistenceTests {
    /// In the initrd (faked in the namespace: a tmpfs /etc with initrd-release, a tmpfs /run), a
    /// merge writes the drop-ins, and says once that EXTENSION_RELOAD_MANAGER is not needed.
    @Test func initrdMergeWritesDropInsAndSkipsReload() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext reloader squashfs ID=_any EXTENSION_RELOAD_MANAGER=1
        mount -t tmpfs tmpfs /run
        mount -t tmpfs tmpfs /etc; touch /etc/initrd-release
        "$EARLYEXT" --root "$R" --state-dir /run/earlyext merge 2> "$W/err"
        fact dropin "$(grep -h ConditionPathExists /run/systemd/system/systemd-sysext.service.d/50-earlyext.conf)"
        fact sysroot_dropin "$(test -f /run/systemd/system/systemd-sysext-sysroot.service.d/50-earlyext.conf && echo yes || echo no)"
        fact reload "$(grep -c 'EXTENSION_RELOAD_MANAGER set by reloader: not needed in the initrd' "$W/err")"
        fact default_root "$("$EARLYEXT" plan 2>&1 | grep -o '/sysroot' | head -1 || true)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["dropin"] == "ConditionPathExists=!/run/earlyext/state.json")
        #expect(r["sysroot_dropin"] == "yes")
        #expect(r["reload"] == "1")
        #expect(r["default_root"] == "/sysroot", "in the initrd --root defaults to /sysroot (absent here: the error names it)")
    }

    /// A merge of another root at runtime writes no drop-in into the running system.
    @Test func mergeOfAnotherRootLeavesTheHostAlone() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        mount -t tmpfs tmpfs /run
        ee merge 2>/dev/null
        fact dropin "$(test -e /run/systemd/system/systemd-sysext.service.d && echo yes || echo no)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["dropin"] == "no")
    }

    /// `systemd-sysext unmerge` takes earlyext's overlay away (it recognises it by
    /// .systemd-sysext/dev). Then `earlyext merge` brings back a sane /usr from the base it kept.
    @Test(.enabled(if: Sandbox.hostSysextVersion != nil, "needs the host's systemd-sysext"),
          arguments: ["plain", "bind"])
    func systemdSysextUnmergeThenEarlyextMerge(shape: String) throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        mount --make-shared "$SANDBOX"
        mount -t tmpfs tmpfs /run
        if [ \#(shape) = bind ]; then mount --bind "$R/usr" "$R/usr"; mount --make-private "$R/usr"; fi
        ee merge 2>/dev/null
        systemd-sysext --root="$R" unmerge > "$W/out" 2>&1 || true
        fact recognised "$(test -e "$R/usr/share/alpha/file" && echo still-merged || echo unmerged)"
        ee merge 2>/dev/null
        fact stack "$(stack_at "$R/usr")"
        fact alpha "$(cat "$R/usr/share/alpha/file")"
        fact base "$(cat "$R/usr/share/base/file")"
        ee unmerge 2>/dev/null
        fact after_unmerge "$(cat "$R/usr/share/base/file" 2>/dev/null || echo missing)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["recognised"] == "unmerged", "systemd-sysext recognises earlyext's merge as a sysext merge")
        #expect(r["stack"] == "overlay")
        #expect(r["alpha"] == "alpha")
        #expect(r["base"] == "base")
        #expect(r["after_unmerge"] == "base")
    }
}
