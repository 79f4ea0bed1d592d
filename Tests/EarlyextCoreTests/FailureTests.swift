import Testing
import Glibc

/// Failure injection. The rule: if anything fails before the swap, ROOT/usr's mountinfo is exactly
/// as before and no loop device or detached mount is left behind. A bad image that is not
/// required is left out with its reason, and the rest merges.
@Suite(.enabled(if: Sandbox.isRoot, "needs root: loop devices and mounts (skipped when not root)"), .serialized)
struct FailureTests {
    /// Each bad image, alone: nothing merges, the mount table is unchanged, no loop device leaks,
    /// and the message names the image and the reason. With a good image beside it, the good one
    /// merges and the bad one is reported.
    @Test(arguments: [
        ("garbage", "head -c 1048576 /dev/urandom > \"$R/etc/extensions/bad.raw\"", "no filesystem found"),
        ("truncated", "ext_tree bad; head -c 262144 /dev/urandom > \"$W/bad/usr/share/bad/blob\"; pack bad squashfs \"$W/full\"; head -c $(( $(stat -c %s \"$W/full/bad.raw\") / 2 )) \"$W/full/bad.raw\" > \"$R/etc/extensions/bad.raw\"", "bad.raw"),
        ("empty-file", ": > \"$R/etc/extensions/bad.raw\"", "bad.raw"),
        ("fifo", "mkfifo \"$R/etc/extensions/bad.raw\"", "bad.raw"),
        ("dangling-link", "ln -s /nonexistent.raw \"$R/etc/extensions/bad.raw\"", "bad.raw"),
        ("escaping-link", "ln -s ../../../../../../../etc/hostname \"$R/etc/extensions/bad.raw\"", "bad.raw"),
        ("no-release", "ext_tree bad; rm -r \"$W/bad/usr/lib/extension-release.d\"; pack bad squashfs", "extension-release"),
        ("carries-os-release", "ext_tree bad; cp \"$R/usr/lib/os-release\" \"$W/bad/usr/lib/os-release\"; pack bad squashfs", "os-release"),
        ("wrong-os", "ext bad squashfs ID=fedora VERSION_ID=40", "fedora"),
        // root reads anything; drop the DAC capabilities so mode 000 means unreadable.
        ("unreadable", "ext bad squashfs; chmod 000 \"$R/etc/extensions/bad.raw\"; EE_WRAP='setpriv --bounding-set=-dac_override,-dac_read_search'", "Permission denied"),
    ])
    func badImageAlone(name: String, setup: String, expected: String) throws {
        let r = try Sandbox.run(#"""
        make_root
        mkdir -p "$R/etc/extensions"
        \#(setup)
        before=$(mount_snapshot)
        set +e; ee merge 2> "$W/err"; status=$?; set -e
        fact status "$status"
        fact unchanged "$( [ "$before" = "$(mount_snapshot)" ] && echo yes || echo no)"
        fact loops "$(settled_loops)"
        fact message "$(grep -m1 'bad' "$W/err" || true)"
        ext good squashfs
        set +e; ee merge 2> "$W/err2"; status2=$?; set -e
        fact status_with_good "$status2"
        fact good "$(cat "$R/usr/share/good/file" 2>/dev/null || echo missing)"
        fact bad_merged "$(grep -qx bad "$R/usr/.systemd-sysext/extensions" 2>/dev/null && echo yes || echo no)"
        fact message_with_good "$(grep -m1 'bad' "$W/err2" || true)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["status"] == "0", "a bad optional image is not a failed run")
        #expect(r["unchanged"] == "yes")
        #expect(r["loops"] == "0")
        let message = r["message"] ?? ""
        #expect(message.contains("bad"), "message names the image: \(message)")
        #expect(message.contains(expected), "message gives the reason: \(message)")
        #expect(r["status_with_good"] == "0")
        #expect(r["good"] == "good")
        #expect(r["bad_merged"] == "no")
        #expect((r["message_with_good"] ?? "").contains("bad"))
    }

    /// A missing base hierarchy fails the run, and nothing changes.
    @Test func missingBase() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        rm -rf "$R/usr/share" "$R/usr/lib/os-release"; mv "$R/usr" "$R/usr.gone"
        printf 'ID=debian\nVERSION_ID=12\n' > "$R/etc/os-release"
        before=$(mount_snapshot)
        set +e; ee merge 2> "$W/err"; status=$?; set -e
        fact status "$status"
        fact unchanged "$( [ "$before" = "$(mount_snapshot)" ] && echo yes || echo no)"
        fact loops "$(settled_loops)"
        fact message "$(head -1 "$W/err")"
        fact lines "$(wc -l < "$W/err")"
        fact status_says "$(ee status 2>/dev/null | grep -c 'last merge attempt failed: .*/usr')"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["status"] == "3", "failed, but nothing required: the boot goes on")
        #expect(r["unchanged"] == "yes")
        #expect(r["loops"] == "0")
        #expect((r["message"] ?? "").contains("/usr"), "\(r["message"] ?? "")")
        #expect(r["status_says"] == "1", "status reports the failed attempt")
    }

    /// The overlay itself fails (more lower layers than overlayfs allows, 500): the merge is
    /// abandoned after every image was mounted, and everything is released.
    @Test func overlayRefusedReleasesEverything() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext_tree tiny
        for i in $(seq 1 505); do mkdir -p "$R/etc/extensions"; cp -a "$W/tiny" "$R/etc/extensions/t$i"; mv "$R/etc/extensions/t$i/usr/lib/extension-release.d/extension-release.tiny" "$R/etc/extensions/t$i/usr/lib/extension-release.d/extension-release.t$i"; done
        ext one squashfs
        before=$(mount_snapshot)
        set +e; ee merge 2> "$W/err"; status=$?; set -e
        fact status "$status"
        fact unchanged "$( [ "$before" = "$(mount_snapshot)" ] && echo yes || echo no)"
        fact loops "$(settled_loops)"
        fact message "$(grep -m1 'overlay' "$W/err" || true)"
        """#, timeout: 600)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["status"] == "3", "failed, but nothing required: the boot goes on")
        #expect(r["unchanged"] == "yes")
        #expect(r["loops"] == "0")
        #expect((r["message"] ?? "").contains("overlay"))
    }
}
