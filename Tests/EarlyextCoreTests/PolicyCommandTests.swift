import Testing

/// The image policy through `merge` and `status`: no silent fallback, ever.
@Suite(.enabled(if: Sandbox.isRoot, "needs root: loop devices and mounts (skipped when not root)"), .serialized)
struct PolicyCommandTests {
    @Test(arguments: [("verity", "no verity data"), ("signed", "no signature")])
    func strictPolicyRefusesPlainImages(policy: String, reason: String) throws {
        let r = try Sandbox.run(#"""
        make_root
        ext plain squashfs
        mkdir -p "$R/etc/earlyext"; printf '[Policy]\nRequire=\#(policy)\n' > "$R/etc/earlyext/earlyext.conf"
        before=$(mount_snapshot)
        set +e; ee merge 2> "$W/err"; fact status $?; set -e
        fact unchanged "$( [ "$before" = "$(mount_snapshot)" ] && echo yes || echo no)"
        fact message "$(grep -m1 'plain' "$W/err")"
        fact status_skipped "$(ee status | grep -m1 '^skipped plain')"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["status"] == "0", "an optional image refused is not a failed run")
        #expect(r["unchanged"] == "yes")
        #expect(r["message"]?.lowercased().contains(reason) == true, "\(r["message"] ?? "")")
        #expect(r["status_skipped"]?.lowercased().contains(reason) == true, "status reports the refusal: \(r["status_skipped"] ?? "")")
    }

    /// A selection's Policy= may be stricter than the global one, never looser.
    @Test func selectionPolicyOnlyTightens() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext strict squashfs; ext loose squashfs
        mkdir -p "$R/etc/earlyext/select.d"
        printf '[Extension]\nName=strict\nUrl=file:///nonexistent\nPolicy=signed\n' > "$R/etc/earlyext/select.d/strict.conf"
        ee --offline merge 2> "$W/err" || true
        fact merged "$(tr '\n' ' ' < "$R/usr/.systemd-sysext/extensions")"
        fact strict_reason "$(grep -m1 'strict' "$W/err")"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["merged"] == "loose ")
        #expect(r["strict_reason"]?.lowercased().contains("no signature") == true, "\(r["strict_reason"] ?? "")")
    }

    /// A broken [Policy] fails the run: it must never become Require=any.
    @Test func brokenPolicyFailsTheRun() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext plain squashfs
        mkdir -p "$R/etc/earlyext"; printf '[Policy]\nRequire=sorta\n' > "$R/etc/earlyext/earlyext.conf"
        before=$(mount_snapshot)
        set +e; ee merge 2> "$W/err"; fact status $?; set -e
        fact unchanged "$( [ "$before" = "$(mount_snapshot)" ] && echo yes || echo no)"
        fact message "$(head -1 "$W/err")"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["status"] == "1")
        #expect(r["unchanged"] == "yes")
        #expect(r["message"]?.contains("Require") == true && r["message"]?.contains("earlyext.conf") == true, "\(r["message"] ?? "")")
    }
}
