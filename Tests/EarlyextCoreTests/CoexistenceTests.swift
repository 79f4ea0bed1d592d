import Testing
@testable import EarlyextCore

struct CoexistenceUnitTests {
    @Test func dropInSkipsTheServiceWhileEarlyextsStateExists() {
        let text = Coexistence.dropIn(stateDir: "/run/earlyext")
        #expect(text.split(separator: "\n").contains("ConditionPathExists=!/run/earlyext/state.json"))
        #expect(text.split(separator: "\n").contains("[Unit]"))
    }
}

@Suite(.enabled(if: Sandbox.isRoot, "needs root: loop devices and mounts (skipped when not root)"), .serialized)
struct CoexistenceTests {
    /// In the initrd (faked in the namespace: a tmpfs /etc with initrd-release, a tmpfs /run), a
    /// merge writes the drop-ins, and says in one line that EXTENSION_RELOAD_MANAGER and
    /// EXTENSION_RESTART_UNITS are not needed, naming the extensions and the units.
    @Test func initrdMergeWritesDropInsAndSkipsReload() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext reloader squashfs ID=_any EXTENSION_RELOAD_MANAGER=1
        ext restarter squashfs ID=_any 'EXTENSION_RESTART_UNITS="restarter.service bad/name"' \
            'EXTENSION_RELOAD_OR_RESTART_UNITS=restarter.socket'
        mount -t tmpfs tmpfs /run
        mount -t tmpfs tmpfs /etc; touch /etc/initrd-release
        "$EARLYEXT" --root "$R" --state-dir /run/earlyext merge 2> "$W/err"
        fact dropin "$(grep -h ConditionPathExists /run/systemd/system/systemd-sysext.service.d/50-earlyext.conf)"
        fact sysroot_dropin "$(test -f /run/systemd/system/systemd-sysext-sysroot.service.d/50-earlyext.conf && echo yes || echo no)"
        fact not_needed "$(grep 'not needed in the initrd' "$W/err" | sed 's/^earlyext: //')"
        fact not_needed_lines "$(grep -c 'not needed in the initrd' "$W/err")"
        fact bad_name "$(grep -c "warning: restarter: EXTENSION_RESTART_UNITS=.*'bad/name' is not a unit name" "$W/err")"
        fact default_root "$("$EARLYEXT" plan 2>&1 | grep -o '/sysroot' | head -1 || true)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["dropin"] == "ConditionPathExists=!/run/earlyext/state.json")
        #expect(r["sysroot_dropin"] == "yes")
        #expect(r["not_needed"] == "EXTENSION_RELOAD_MANAGER set by reloader, EXTENSION_RESTART_UNITS of restarter "
            + "(restarter.service), EXTENSION_RELOAD_OR_RESTART_UNITS of restarter (restarter.socket): not needed in "
            + "the initrd, the system's manager starts with the merged units")
        #expect(r["not_needed_lines"] == "1")
        #expect(r["bad_name"] == "1")
        #expect(r["default_root"] == "/sysroot", "in the initrd --root defaults to /sysroot (absent here: the error names it)")
    }

    /// At runtime with another root, nothing is restarted (that root's manager is not the running
    /// one), on merge, refresh and unmerge alike; the state record keeps the keys and what
    /// identifies each image, for the next run's plan.
    @Test func anotherRootRestartsNothingAndTheRecordKeepsTheKeys() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs ID=_any SYSEXT_VERSION_ID=1 'EXTENSION_RESTART_UNITS=alpha.service'
        ext beta squashfs ID=_any 'EXTENSION_RELOAD_OR_RESTART_UNITS=beta.service'
        mount -t tmpfs tmpfs /run
        ee merge 2> "$W/merge"
        fact merge "$(grep -c 'EXTENSION_RESTART_UNITS of alpha (alpha.service), EXTENSION_RELOAD_OR_RESTART_UNITS of beta (beta.service): not acted on, --root is not /' "$W/merge")"
        fact keys "$(tr -d ' \n' < "$S/state.json" | grep -o '"EXTENSION_[A-Z_]*":"[a-z.]*"' | tr '\n' ' ')"
        fact file_id "$(grep -c '"file_id"' "$S/state.json")"
        ext_tree alpha ID=_any SYSEXT_VERSION_ID=2 'EXTENSION_RESTART_UNITS=alpha.service'; pack alpha squashfs
        ee refresh 2> "$W/refresh"
        fact refresh "$(grep 'not acted on' "$W/refresh" | sed 's/^earlyext: //')"
        ee unmerge 2> "$W/unmerge"
        fact unmerge "$(grep -c 'EXTENSION_RESTART_UNITS of alpha (alpha.service), EXTENSION_RELOAD_OR_RESTART_UNITS of beta (beta.service): not acted on' "$W/unmerge")"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["merge"] == "1")
        #expect(r["keys"] == #""EXTENSION_RESTART_UNITS":"alpha.service" "EXTENSION_RELOAD_OR_RESTART_UNITS":"beta.service" "#)
        #expect(r["file_id"] == "2")
        #expect(r["refresh"] == "EXTENSION_RESTART_UNITS of alpha (alpha.service): not acted on, --root is not /: "
            + "the running service manager is not that root's", "only the changed extension")
        #expect(r["unmerge"] == "1")
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
