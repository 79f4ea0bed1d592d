import Testing
import Glibc

/// Privileged tests: real loop devices, real squashfs/erofs/ext4 images, real mounts, each in
/// its own private mount namespace (see Tests/Privileged/lib.sh). They run the built binary.
@Suite(.enabled(if: Sandbox.isRoot, "needs root: loop devices and mounts (skipped when not root)"), .serialized)
struct MergeTests {
    @Test func mergeStatusUnmergeAcrossFormats() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        ext beta erofs 'ID=debian' 'VERSION_ID=12'
        ext gamma dir 'ID=_any'
        ext delta ext4
        ext epsilon btrfs
        before=$(mount_snapshot)
        ee merge
        fact stack "$(stack_at "$R/usr")"
        fact files "$(cat "$R/usr/share/alpha/file" "$R/usr/share/beta/file" "$R/usr/share/gamma/file" "$R/usr/share/delta/file" "$R/usr/share/epsilon/file" | tr '\n' ' ')"
        fact base "$(cat "$R/usr/share/base/file")"
        fact listed "$(tr '\n' ' ' < "$R/usr/.systemd-sysext/extensions")"
        fact dev_matches "$( [ "$(cat "$R/usr/.systemd-sysext/dev")" = "$(stat -c '%Hd:%Ld' "$R/usr")" ] && echo yes || echo no)"
        fact readonly "$(touch "$R/usr/x" 2>/dev/null && echo no || echo yes)"
        ee status --json > "$W/status.json"
        fact status_names "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(d["hierarchies"][0]["extensions"]), d["hierarchies"][0]["mounted"])' "$W/status.json")"
        ee unmerge
        fact after_unmerge_stack "$(stack_at "$R/usr")"
        fact after_unmerge_alpha "$(test -e "$R/usr/share/alpha/file" && echo present || echo gone)"
        fact after_unmerge_base "$(cat "$R/usr/share/base/file")"
        fact mounts_restored "$( [ "$before" = "$(mount_snapshot)" ] && echo yes || echo no)"
        fact loops "$(settled_loops)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["stack"] == "overlay")
        #expect(r["files"] == "alpha beta gamma delta epsilon ")
        #expect(r["base"] == "base")
        #expect(r["listed"] == "alpha beta delta epsilon gamma ")
        #expect(r["dev_matches"] == "yes")
        #expect(r["readonly"] == "yes")
        #expect(r["status_names"] == "alpha beta delta epsilon gamma True")
        #expect(r["after_unmerge_stack"] == "")
        #expect(r["after_unmerge_alpha"] == "gone")
        #expect(r["after_unmerge_base"] == "base")
        #expect(r["mounts_restored"] == "yes")
        #expect(r["loops"] == "0")
    }

    /// ROOT/usr as a plain directory, a private bind mount, and a shared mount with a peer.
    @Test(arguments: ["plain", "bind", "shared"])
    func exactlyOneOverlayWhateverTheShape(shape: String) throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        ext beta squashfs
        case \#(shape) in
          plain) ;;
          bind) mount --bind "$R/usr" "$R/usr"; mount --make-private "$R/usr" ;;
          shared)
            mount --make-shared "$SANDBOX"
            mount --bind "$R/usr" "$R/usr"
            mkdir -p "$SANDBOX/peer"; mount --bind "$R" "$SANDBOX/peer" ;;
        esac
        fact before "$(stack_at "$R/usr")"
        ee merge
        fact stack "$(stack_at "$R/usr")"
        fact alpha "$(cat "$R/usr/share/alpha/file")"
        fact base "$(cat "$R/usr/share/base/file")"
        ee refresh
        fact stack_after_refresh "$(stack_at "$R/usr")"
        fact base_after_refresh "$(cat "$R/usr/share/base/file")"
        if [ \#(shape) = shared ]; then fact peer_base "$(cat "$SANDBOX/peer/usr/share/base/file")"; fi
        ee unmerge
        fact stack_after_unmerge "$(stack_at "$R/usr")"
        fact base_after_unmerge "$(cat "$R/usr/share/base/file")"
        fact alpha_after_unmerge "$(test -e "$R/usr/share/alpha" && echo present || echo gone)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        let before = r["before"] ?? "?"
        #expect(r["stack"] == "overlay", "shape \(shape): before=\(before)")
        #expect(r["alpha"] == "alpha")
        #expect(r["base"] == "base")
        #expect(r["stack_after_refresh"] == "overlay")
        #expect(r["base_after_refresh"] == "base")
        if shape == "shared" { #expect(r["peer_base"] == "base") }
        #expect(r["stack_after_unmerge"] == before)
        #expect(r["base_after_unmerge"] == "base")
        #expect(r["alpha_after_unmerge"] == "gone")
    }

    /// Layer order: names by version order, the highest on top, over the base.
    @Test func highestVersionIsTopLayer() throws {
        let r = try Sandbox.run(#"""
        make_root
        for n in ext-1.9 ext-1.10 ext-1.2; do
          ext_tree "$n"; mkdir -p "$W/$n/usr/share/base"; echo "$n" > "$W/$n/usr/share/base/shadowed"; pack "$n" squashfs
        done
        ee merge
        fact winner "$(cat "$R/usr/share/base/shadowed")"
        fact order "$(tr '\n' ' ' < "$R/usr/.systemd-sysext/extensions")"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["winner"] == "ext-1.10")
        #expect(r["order"] == "ext-1.2 ext-1.9 ext-1.10 ")
    }

    /// A refresh while another process holds files open under ROOT/usr, and keeps reading.
    @Test func refreshWithOpenFiles() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        ee merge
        exec 3< "$R/usr/share/alpha/file"
        ( cd "$R/usr/share/base" && exec sleep 30 ) >/dev/null 2>&1 & holder=$!
        ext beta squashfs
        ee refresh
        fact open_fd_reads "$(cat <&3)"
        fact holder_alive "$(kill -0 $holder && echo yes || echo no)"
        fact beta "$(cat "$R/usr/share/beta/file")"
        fact stack "$(stack_at "$R/usr")"
        fact listed "$(tr '\n' ' ' < "$R/usr/.systemd-sysext/extensions")"
        kill -KILL $holder; wait $holder 2>/dev/null || true
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["open_fd_reads"] == "alpha")
        #expect(r["holder_alive"] == "yes")
        #expect(r["beta"] == "beta")
        #expect(r["stack"] == "overlay")
        #expect(r["listed"] == "alpha beta ")
    }

    /// 1, 64 and 256 images. systemd-sysext 252 fails at 128 (mount data over a page).
    @Test(arguments: [1, 64, 256])
    func manyImages(count: Int) throws {
        let r = try Sandbox.run(#"""
        make_root
        for i in $(seq 1 \#(count)); do ext "e$i" squashfs; done
        ee merge
        fact stack "$(stack_at "$R/usr")"
        fact layers "$(wc -l < "$R/usr/.systemd-sysext/extensions")"
        fact first "$(cat "$R/usr/share/e1/file")"
        fact last "$(cat "$R/usr/share/e\#(count)/file")"
        fact loops_in_use "$(sandbox_loops)"
        ee unmerge
        fact loops_after "$(settled_loops)"
        """#, timeout: 900)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["stack"] == "overlay")
        #expect(r["layers"] == String(count))
        #expect(r["first"] == "e1")
        #expect(r["last"] == "e\(count)")
        #expect(r["loops_in_use"] == String(count))
        #expect(r["loops_after"] == "0")
    }

    /// A refresh with unchanged inputs keeps the merge (same mount); a changed image rebuilds it.
    @Test func refreshDetectsNothingChanged() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        ee merge 2>/dev/null
        id1=$(awk -v p="$R/usr" '$5 == p { print $1 }' /proc/self/mountinfo)
        ee refresh 2> "$W/err"
        id2=$(awk -v p="$R/usr" '$5 == p { print $1 }' /proc/self/mountinfo)
        fact same_mount "$( [ "$id1" = "$id2" ] && echo yes || echo no)"
        fact said "$(grep -c 'nothing changed' "$W/err")"
        ext_tree alpha; echo changed > "$W/alpha/usr/share/alpha/file"; pack alpha squashfs
        ee refresh 2>/dev/null
        id3=$(awk -v p="$R/usr" '$5 == p { print $1 }' /proc/self/mountinfo)
        fact rebuilt "$( [ "$id3" != "$id2" ] && echo yes || echo no)"
        fact content "$(cat "$R/usr/share/alpha/file")"
        fact stack "$(stack_at "$R/usr")"
        umount -l "$R/usr"
        ee refresh 2>/dev/null
        fact remerged_after_external_unmount "$(stack_at "$R/usr")"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["same_mount"] == "yes")
        #expect(r["said"] == "1")
        #expect(r["rebuilt"] == "yes")
        #expect(r["content"] == "changed")
        #expect(r["stack"] == "overlay")
        #expect(r["remerged_after_external_unmount"] == "overlay")
    }

    /// A mount nested under the hierarchy survives a refresh, and the whole swap is gap-free
    /// for it too (it is attached to the new overlay before the old one goes).
    @Test func nestedMountsSurviveRefresh() throws {
        let r = try Sandbox.run(#"""
        make_root
        ext alpha squashfs
        mount --bind "$R/usr" "$R/usr"
        ee merge 2>/dev/null
        mount -t tmpfs tmpfs "$R/usr/share/base"; echo nested > "$R/usr/share/base/nf"
        mkdir "$R/usr/share/base/deeper"; mount -t tmpfs tmpfs "$R/usr/share/base/deeper"; echo deep > "$R/usr/share/base/deeper/df"
        ext beta squashfs
        ee refresh 2>/dev/null
        fact nested "$(cat "$R/usr/share/base/nf")"
        fact deeper "$(cat "$R/usr/share/base/deeper/df")"
        fact beta "$(cat "$R/usr/share/beta/file")"
        fact stack "$(stack_at "$R/usr")"
        fact nested_stack "$(stack_at "$R/usr/share/base")"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["nested"] == "nested")
        #expect(r["deeper"] == "deep")
        #expect(r["beta"] == "beta")
        #expect(r["stack"] == "overlay")
        #expect(r["nested_stack"] == "tmpfs")
    }
}
