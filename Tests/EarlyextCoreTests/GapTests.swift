import Testing

/// The point of the beneath swap: readers under ROOT/usr never see a missing or half-merged tree.
@Suite(.enabled(if: Sandbox.isRoot, "needs root: loop devices and mounts (skipped when not root)"), .serialized)
struct GapTests {
    /// A reader opens files from the base and from two extensions in a tight loop during 1000
    /// refreshes that alternate between two extension sets. Zero failed reads is the only pass.
    @Test func thousandRefreshesNoFailedRead() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        ext beta erofs
        ext gamma squashfs
        mount --bind "$R/usr" "$R/usr"
        ee merge 2>/dev/null
        python3 "$(dirname "$EARLYEXT_LIB")/reader.py" "$W/stop" "$W/reads" \
          "$R/usr/share/base/file" "$R/usr/share/alpha/file" "$R/usr/share/beta/file" & reader=$!
        fails=0
        for i in $(seq 1000); do
          # Alternate between {alpha, beta} and {alpha, beta, gamma}.
          if [ $((i % 2)) = 1 ]; then mv "$R/etc/extensions/gamma.raw" "$W/gamma.raw"
          else mv "$W/gamma.raw" "$R/etc/extensions/gamma.raw"; fi
          ee refresh 2>/dev/null || fails=$((fails + 1))
        done
        touch "$W/stop"; wait $reader
        fact refresh_failures "$fails"
        read reads failures first < "$W/reads"
        fact reads "$reads"
        fact failed_reads "$failures"
        fact first_error "$first"
        fact stack "$(stack_at "$R/usr")"
        fact loops "$(sandbox_loops)"
        """#, timeout: 1200)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["refresh_failures"] == "0")
        #expect(r["failed_reads"] == "0", "first failed read: \(r["first_error"] ?? "")")
        #expect(Int(r["reads"] ?? "0") ?? 0 > 1000, "the reader kept reading: \(r["reads"] ?? "")")
        #expect(r["stack"] == "overlay")
        #expect(r["loops"] == "3", "only the current merge's images hold loop devices (1000 is even: gamma is back)")
    }

    /// A refresh that fails midway (every image mounted, then the overlay refused: more layers
    /// than overlayfs allows) leaves the old merge in place, and the reader sees nothing.
    @Test func failedRefreshLeavesOldMerge() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        mount --bind "$R/usr" "$R/usr"
        ee merge 2>/dev/null
        before=$(mount_snapshot)
        python3 "$(dirname "$EARLYEXT_LIB")/reader.py" "$W/stop" "$W/reads" "$R/usr/share/base/file" "$R/usr/share/alpha/file" & reader=$!
        ext_tree tiny
        for i in $(seq 1 505); do cp -a "$W/tiny" "$R/etc/extensions/t$i"; mv "$R/etc/extensions/t$i/usr/lib/extension-release.d/extension-release.tiny" "$R/etc/extensions/t$i/usr/lib/extension-release.d/extension-release.t$i"; done
        set +e; ee refresh 2> "$W/err"; status=$?; set -e
        touch "$W/stop"; wait $reader
        fact status "$status"
        fact unchanged "$( [ "$before" = "$(mount_snapshot)" ] && echo yes || echo no)"
        fact alpha "$(cat "$R/usr/share/alpha/file")"
        fact listed "$(tr '\n' ' ' < "$R/usr/.systemd-sysext/extensions")"
        read reads failures first < "$W/reads"
        fact failed_reads "$failures"
        fact loops "$(settled_loops)"
        """#, timeout: 600)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["status"] != "0")
        #expect(r["unchanged"] == "yes")
        #expect(r["alpha"] == "alpha")
        #expect(r["listed"] == "alpha ")
        #expect(r["failed_reads"] == "0")
        #expect(r["loops"] == "1")
    }

    /// The control: the same reader during systemd-sysext 252's refresh (unmerge, then merge)
    /// does see failures. It shows the reader detects a gap when there is one.
    @Test(.enabled(if: Sandbox.hostSysextVersion.map { $0 < 261 } ?? false, "needs the host's systemd-sysext (< 261)"))
    func readerSeesSystemdSysextGap() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        mount --make-shared "$SANDBOX"
        mount -t tmpfs tmpfs /run
        systemd-sysext --root="$R" merge >/dev/null 2>&1
        python3 "$(dirname "$EARLYEXT_LIB")/reader.py" "$W/stop" "$W/reads" "$R/usr/share/alpha/file" & reader=$!
        for i in $(seq 20); do systemd-sysext --root="$R" refresh >/dev/null 2>&1; done
        touch "$W/stop"; wait $reader
        read reads failures first < "$W/reads"
        fact failed_reads "$failures"
        """#, timeout: 600)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Int(r["failed_reads"] ?? "0") ?? 0 > 0, "systemd-sysext 252 refresh has a window without the extension")
    }
}

