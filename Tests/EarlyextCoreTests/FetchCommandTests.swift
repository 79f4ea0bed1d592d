import Testing

/// The fetch stage through the command line, against the loopback server (Tests/Fetch/server.py,
/// 127.0.0.1 only): merge fetches what selection files and bakery transfers name, then merges;
/// a second merge fetches nothing; a required download that fails stops the run before anything
/// is mounted; an optional one is reported and the rest merges.
@Suite(.enabled(if: Sandbox.isRoot, "needs root: loop devices and mounts (skipped when not root)"), .serialized)
struct FetchCommandTests {
    /// A pinned selection file and a sysupdate transfer exactly as sysext-bakery publishes it.
    static let setup = #"""
    make_root
    srv=$SANDBOX/srv; mkdir -p "$srv/kubernetes"
    ext_tree pinned; pack pinned squashfs "$srv"
    ext_tree kubernetes-v1.31.0-x86-64 ID=_any ARCHITECTURE=x86-64
    mv "$W/kubernetes-v1.31.0-x86-64/usr/lib/extension-release.d/extension-release.kubernetes-v1.31.0-x86-64" \
       "$W/kubernetes-v1.31.0-x86-64/usr/lib/extension-release.d/extension-release.kubernetes"
    pack kubernetes-v1.31.0-x86-64 squashfs "$srv/kubernetes"
    cp "$srv/kubernetes/kubernetes-v1.31.0-x86-64.raw" "$srv/kubernetes/kubernetes-v1.30.0-x86-64.raw"
    cp "$srv/kubernetes/kubernetes-v1.31.0-x86-64.raw" "$srv/kubernetes/kubernetes-v1.32.0-arm64.raw"
    (cd "$srv/kubernetes" && sha256sum *.raw > SHA256SUMS)
    serve "$srv"
    base=http://127.0.0.1:$PORT
    selection pinned "$base/ok/pinned.raw" "$(sha256sum "$srv/pinned.raw" | cut -d' ' -f1)"
    mkdir -p "$R/etc/sysupdate.kubernetes.d" "$R/opt/extensions/kubernetes"
    cat > "$R/etc/sysupdate.kubernetes.d/kubernetes.conf" <<CONF
    [Transfer]
    Verify=false
    [Source]
    Type=url-file
    Path=$base/ok/kubernetes/
    MatchPattern=kubernetes-@v-%a.raw
    [Target]
    InstancesMax=3
    Type=regular-file
    Path=/opt/extensions/kubernetes
    CurrentSymlink=/etc/extensions/kubernetes.raw
    CONF
    """#

    /// The image lands intact on each file system a target directory lives on in practice
    /// (overlay: an overlayfs /etc, over ext4): whole chunks go through O_DIRECT where the file
    /// system takes it (all of these on Linux 6.18), the short last chunk buffered, then fsync and
    /// rename. 5 MiB + 77 bytes: five whole chunks and a short one.
    @Test(arguments: ["ext4", "btrfs", "xfs", "tmpfs", "overlay"])
    func fetchOntoEachFileSystem(_ fileSystem: String) throws {
        let r = try Sandbox.run("fs=\(fileSystem)\n" + #"""
        make_root
        srv=$SANDBOX/srv; mkdir -p "$srv" "$R/etc/extensions"
        head -c $((5 * 1048576 + 77)) /dev/urandom > "$srv/big.raw"
        serve "$srv"
        sum=$(sha256sum "$srv/big.raw" | cut -d' ' -f1)
        selection big "http://127.0.0.1:$PORT/ok/big.raw" "$sum"
        if [ "$fs" = tmpfs ]; then
          mount -t tmpfs -o size=64m tmpfs "$R/etc/extensions"
        elif [ "$fs" = overlay ]; then
          mkdir -p "$W/ovl/lower" "$W/ovl/upper" "$W/ovl/work"
          mount -t overlay overlay -o "lowerdir=$W/ovl/lower,upperdir=$W/ovl/upper,workdir=$W/ovl/work" "$R/etc/extensions"
        else
          truncate -s 320M "$W/fs.img"
          "mkfs.$fs" -q "$W/fs.img" >/dev/null 2>&1 || mkfs."$fs" "$W/fs.img" >/dev/null
          mount -o loop "$W/fs.img" "$R/etc/extensions"
        fi
        fact mounted "$(stat -f -c %T "$R/etc/extensions")"
        ee fetch > "$W/out" 2> "$W/err"; fact status $?
        fact digest_ok "$([ "$(sha256sum "$R/etc/extensions/big.raw" | cut -d' ' -f1)" = "$sum" ] && echo yes || echo no)"
        fact size "$(stat -c %s "$R/etc/extensions/big.raw")"
        fact leftovers "$(ls -A "$R/etc/extensions" | grep -v -e '^big.raw$' -e '^lost+found$' | tr '\n' ' ')"
        fact err "$(head -c 300 "$W/err" | tr '\n' ' ')"
        umount "$R/etc/extensions"
        """#)
        let statName = ["ext4": "ext2/ext3", "overlay": "overlayfs"][fileSystem] ?? fileSystem
        #expect(r["mounted"] == statName, "\(r.stderr)")
        #expect(r["status"] == "0", "\(r["err"] ?? "") \(r.stderr)")
        #expect(r["digest_ok"] == "yes")
        #expect(r["size"] == "\(5 * 1_048_576 + 77)")
        #expect(r["leftovers"] == "", "no partial or temporary file is left")
    }

    @Test func mergeFetchesThenMergesAndASecondMergeFetchesNothing() throws {
        let r = try Sandbox.run(Self.setup + "\n" + #"""
        ee plan > "$W/plan.txt" 2>/dev/null
        fact plan_fetch "$(grep -c ' fetch ' "$W/plan.txt")"
        ee merge 2> "$W/err"
        fact merged "$(tr '\n' ' ' < "$R/usr/.systemd-sysext/extensions")"
        fact link "$(readlink "$R/etc/extensions/kubernetes.raw")"
        fact link_target "$(readlink -f "$R/etc/extensions/kubernetes.raw" | sed "s|^$R||")"
        fact pinned "$(cat "$R/usr/share/pinned/file")"
        python3 - "$S/state.json" <<'PY'
        import json, sys
        d = json.load(open(sys.argv[1]))
        print("FACT fetched=" + " ".join(sorted(f["name"] + ":" + str(f["bytes"] > 0) for f in d["fetched"])))
        print("FACT fetch_timing=" + str("fetch" in d["timings_ms"]))
        PY
        requests=$(curl -s "$base/_log" | grep -c '\.raw')
        umount -l "$R/usr"; rm -f "$S/state.json"
        ee merge 2>/dev/null
        fact second_downloads "$(( $(curl -s "$base/_log" | grep -c '\.raw') - requests ))"
        fact second_merged "$(tr '\n' ' ' < "$R/usr/.systemd-sysext/extensions")"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["plan_fetch"] == "2", "plan shows both downloads")
        #expect(r["merged"] == "kubernetes pinned ")
        #expect(r["link_target"] == "/opt/extensions/kubernetes/kubernetes-v1.31.0-x86-64.raw", "the newest x86-64 version")
        #expect(r["link"]?.hasPrefix("/") == false, "relative, so it works under /sysroot and after switch-root")
        #expect(r["pinned"] == "pinned")
        #expect(r["fetched"] == "kubernetes:True pinned:True")
        #expect(r["fetch_timing"] == "True")
        #expect(r["second_downloads"] == "0", "what is on disk is not fetched again")
        #expect(r["second_merged"] == "kubernetes pinned ")
    }

    @Test func requiredDownloadFailureStopsTheRunBeforeAnyMount() throws {
        let r = try Sandbox.run(Self.setup + "\n" + #"""
        rm "$R/etc/sysupdate.kubernetes.d/kubernetes.conf"
        selection pinned "$base/status/404/pinned.raw" "$(sha256sum "$srv/pinned.raw" | cut -d' ' -f1)" yes
        before=$(mount_snapshot)
        set +e; ee merge 2> "$W/err"; fact status $?; set -e
        fact unchanged "$( [ "$before" = "$(mount_snapshot)" ] && echo yes || echo no)"
        fact message "$(grep -m1 '404' "$W/err")"
        fact partial "$(ls "$R/etc/extensions" 2>/dev/null | tr '\n' ' ')"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["status"] == "1")
        #expect(r["unchanged"] == "yes")
        #expect(r["message"]?.contains("/status/404/pinned.raw") == true, "the message names the URL: \(r["message"] ?? "")")
        #expect(r["partial"] == "", "nothing under a final name")
    }

    @Test func optionalDownloadFailureIsReportedAndTheRestMerges() throws {
        let r = try Sandbox.run(Self.setup + "\n" + #"""
        selection pinned "$base/corrupt/pinned.raw" "$(sha256sum "$srv/pinned.raw" | cut -d' ' -f1)" no
        set +e; ee merge 2> "$W/err"; fact status $?; set -e
        fact merged "$(tr '\n' ' ' < "$R/usr/.systemd-sysext/extensions")"
        fact message "$(grep -m1 'corrupt/pinned.raw' "$W/err")"
        fact pinned_file "$(test -e "$R/etc/extensions/pinned.raw" && echo present || echo absent)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["status"] == "0")
        #expect(r["merged"] == "kubernetes ")
        #expect(r["message"]?.isEmpty == false)
        #expect(r["pinned_file"] == "absent", "a bad download never appears under its final name")
    }

    @Test func offlineNeverTouchesTheNetwork() throws {
        let r = try Sandbox.run(Self.setup + "\n" + #"""
        ee --offline merge 2> "$W/err" || true
        fact requests "$(curl -s "$base/_log" | grep -vc _log || true)"
        ee plan --offline > /dev/null 2>&1 || true
        fact requests_after_plan "$(curl -s "$base/_log" | grep -vc _log || true)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["requests"] == "0")
        #expect(r["requests_after_plan"] == "0")
    }

    /// In the initrd (faked: /etc/initrd-release on a tmpfs /etc, a tmpfs /run) with no network
    /// (a network namespace of its own, with no route) and no way to bring one up (systemctl
    /// cannot reach a service manager): the network bring-up fails, and each download is then
    /// tried once, failing with its URL and reason, instead of being retried with backoff.
    @Test func noNetworkInTheInitrdMeansOneAttemptPerDownload() throws {
        let r = try Sandbox.run(Self.setup + "\n" + #"""
        mount -t tmpfs tmpfs /run
        mount -t tmpfs tmpfs /etc; touch /etc/initrd-release
        EE_WRAP="unshare -n" ee fetch 2> "$W/err" && fact status 0 || fact status $?
        fact once "$(grep -c 'trying each download once, without retries' "$W/err")"
        fact retried "$(grep -c 'retrying in' "$W/err" || true)"
        fact names_url "$(grep -c "$base/ok/pinned.raw" "$W/err")"
        fact pinned_file "$(test -e "$R/etc/extensions/pinned.raw" && echo present || echo absent)"
        """#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r["once"] == "1", "\(r.stderr)")
        #expect(r["retried"] == "0", "no download is retried once the network could not come up")
        #expect(r["names_url"] != "0", "the failure names the URL")
        #expect(r["pinned_file"] == "absent")
    }
}
