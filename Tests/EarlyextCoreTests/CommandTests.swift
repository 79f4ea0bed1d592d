import Testing
import Foundation

/// The commands end to end, through the built binary: output shapes, exit codes, messages.
@Suite(.enabled(if: Sandbox.isRoot, "needs root: loop devices and mounts (skipped when not root)"), .serialized)
struct CommandTests {
    @Test func planAndListChangeNothingAndExplainEachVerdict() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        ext old squashfs ID=debian VERSION_ID=11
        ext arm squashfs ID=_any ARCHITECTURE=arm64
        mkdir -p "$R/etc/extensions/masked"; ext_tree masked; pack masked squashfs "$R/var/lib/extensions"
        before=$(mount_snapshot)
        ee plan --json > "$W/plan.json"
        ee list > "$W/list.txt"
        fact unchanged "$( [ "$before" = "$(mount_snapshot)" ] && echo yes || echo no)"
        fact loops "$(settled_loops)"
        fact state "$(test -e "$S/state.json" && echo written || echo none)"
        python3 - "$W/plan.json" <<'PY'
        import json, sys
        d = json.load(open(sys.argv[1]))
        for e in d["entries"]:
            print("FACT %s=%s|%s" % (e["name"], e["verdict"], e["reason"]))
        print("FACT host=%s %s %s" % (d["host"]["id"], d["host"]["scope"], d["host"]["architecture"]))
        PY
        fact list_alpha "$(grep '^alpha' "$W/list.txt" | tr -s ' ')"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["unchanged"] == "yes")
        #expect(r["loops"] == "0")
        #expect(r["state"] == "none", "plan and list write nothing")
        #expect(r["alpha"] == "merge|merge: ID=_any")
        #expect(r["old"]?.hasPrefix("skip|") == true && r["old"]?.contains("VERSION_ID=11") == true, "\(r["old"] ?? "")")
        #expect(r["arm"]?.hasPrefix("skip|") == true && r["arm"]?.contains("arm64") == true, "\(r["arm"] ?? "")")
        #expect(r["masked"]?.hasPrefix("skip|") == true && r["masked"]?.contains("masked") == true, "\(r["masked"] ?? "")")
        #expect(r["host"] == "debian system x86-64")
        #expect(r["list_alpha"] == "alpha /etc/extensions/alpha.raw squashfs merge")
    }

    @Test func verifyGivesVerdictsOffline() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext_tree good; pack good erofs "$W/img"
        ext_tree wrong ID=fedora VERSION_ID=40; pack wrong squashfs "$W/img"
        head -c 65536 /dev/zero > "$W/img/zero.raw"
        set +e
        ee verify "$W/img/good.raw" > "$W/ok.txt" 2>&1; fact good_status $?
        ee verify "$W/img/good.raw" "$W/img/wrong.raw" "$W/img/zero.raw" > "$W/bad.txt" 2> "$W/bad.err"; fact mixed_status $?
        set -e
        fact good_line "$(head -1 "$W/ok.txt")"
        fact wrong_line "$(grep wrong.raw "$W/bad.txt")"
        fact zero_line "$(grep zero.raw "$W/bad.txt")"
        fact summary "$(cat "$W/bad.err")"
        fact loops "$(settled_loops)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["good_status"] == "0")
        #expect(r["good_line"]?.contains("ok: erofs") == true, "\(r["good_line"] ?? "")")
        #expect(r["mixed_status"] == "1")
        #expect(r["wrong_line"]?.contains("refused") == true && r["wrong_line"]?.contains("fedora") == true)
        #expect(r["zero_line"]?.contains("no filesystem found") == true, "\(r["zero_line"] ?? "")")
        #expect(r["summary"]?.contains("2 of 3") == true, "\(r["summary"] ?? "")")
        #expect(r["loops"] == "0")
    }

    @Test(arguments: [
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["merge", "--bogus"], "unrecognized option '--bogus'"),
        (["merge", "extra"], "unexpected argument 'extra'"),
        (["verify"], "verify"),
        (["merge", "--json"], "--json"),
        ([], "no command"),
    ])
    func usageErrorsExitTwoWithOneLine(arguments: [String], expected: String) throws {
        let r = try Sandbox.run("set +e; \"$EARLYEXT\" \(arguments.map { "'\($0)'" }.joined(separator: " ")) 2> \"$W/err\"; fact status $?; fact first \"$(head -1 \"$W/err\")\"")
        #expect(r["status"] == "2")
        #expect(r["first"]?.contains(expected) == true, "\(r["first"] ?? "")")
    }

    @Test func statusBeforeAndAfter() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs ID=debian VERSION_ID=12 SYSEXT_VERSION_ID=1.2.3
        fact before "$(ee status | head -1)"
        ee merge 2>/dev/null
        ee status > "$W/status.txt"
        fact row "$(grep '/usr' "$W/status.txt" | head -1 | awk '{print $2, $4}')"
        fact detail "$(grep '^alpha' "$W/status.txt" | awk '{print $2, $3, $4}')"
        fact timings "$(grep -c 'timings (ms)' "$W/status.txt")"
        umount -l "$R/usr"
        fact behind_back "$(ee status | grep -c 'NOT MOUNTED')"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["before"]?.contains("No merge recorded") == true)
        #expect(r["row"] == "alpha merged")
        #expect(r["detail"] == "1.2.3 squashfs /etc/extensions/alpha.raw")
        #expect(r["timings"] == "1")
        #expect(r["behind_back"] == "1")
    }
}
