import Foundation
import Glibc
import Testing

/// Differential tests: each scenario builds one fake root (os-release plus extension images in the
/// search dirs), merges a fresh copy of it with `systemd-sysext --root=ROOT merge` and another with
/// `earlyext --root ROOT --state-dir STATE merge`, each in its own private mount namespace, and
/// compares the merged ROOT/usr and ROOT/opt trees: paths, types, modes, owners, symlink targets,
/// content hashes, `.systemd-sysext/extensions` byte for byte (names and their order), and which
/// extensions were merged. The scenarios and the driver are bash: `Tests/Differential/`.
///
/// The host has systemd-sysext 252. Where 252 differs from today's systemd, the scenario says how
/// (`quirk252` in scenarios.sh, the table in Tests/Differential/README.md): the test then holds
/// earlyext to the modern rule, comparing it with a 252 run on a root adjusted so that 252 produces
/// the modern result, and separately checks that 252 still does what the quirk describes.
@Suite(.serialized)
struct DifferentialTests {
    struct Scenario: CustomTestStringConvertible, Sendable {
        /// The `sc_NAME` function in Tests/Differential/scenarios.sh.
        let name: String
        /// Where the host's systemd-sysext 252 differs from current systemd; nil where it agrees.
        let sysext252: String?

        init(_ name: String, sysext252: String? = nil) {
            self.name = name
            self.sysext252 = sysext252
        }

        var testDescription: String { sysext252 == nil ? name : "\(name) (252 differs)" }
    }

    static let scenarios: [Scenario] = [
        // Matching against the host's os-release.
        Scenario("version_id"),
        Scenario("sysext_level"),
        Scenario("level_only_host"),
        Scenario("rolling_host"),
        Scenario("id_any"),
        Scenario("architecture"),
        Scenario("scope_system"),
        // 252 takes the scope from the system it runs on (in_initrd()); v259+ from
        // ROOT/etc/initrd-release. earlyext follows v259: the reference run forces
        // SYSTEMD_IN_INITRD=1.
        Scenario("scope_initrd_root", sysext252: "scope from the running system, not from ROOT/etc/initrd-release"),
        Scenario("etc_os_release"),
        Scenario("os_release_symlink"),
        Scenario("dangling_etc_os_release"),
        Scenario("release_syntax"),
        // ID_LIKE matching arrived in v258; 252 refuses an image whose ID is only in the host's
        // ID_LIKE. earlyext must accept it; the reference run gives 252 a host ID it matches.
        Scenario("id_like", sysext252: "no ID_LIKE matching (v258+)"),
        Scenario("nothing_matches"),
        // Discovery: search dirs, names, masking.
        Scenario("precedence"),
        // 252 still searches /usr/lib/extensions and /usr/local/lib/extensions (dropped in v256).
        Scenario("usr_lib_extensions", sysext252: "also searches /usr/lib/extensions, /usr/local/lib/extensions"),
        Scenario("mask_empty_dir"),
        // 252 under --root ignores symlinked entries, so a /dev/null link masks nothing.
        Scenario("mask_dev_null", sysext252: "a symlink to /dev/null does not mask under --root"),
        Scenario("directory"),
        // 252 does not strip `.sysext.raw`, finds no extension-release.foo.sysext and fails the
        // whole merge; the reference run renames the images to NAME.raw.
        Scenario("sysext_raw_naming", sysext252: "does not know the .sysext.raw suffix"),
        // 252 under --root skips symlinked entries; current systemd chases them inside the root.
        Scenario("symlink_entry", sysext252: "skips symlinked entries under --root"),
        Scenario("invalid_entries"),
        Scenario("hidden_entry"),
        // Images and their release files.
        // 252 fails the whole merge on an image without a usable extension-release file; current
        // systemd (and earlyext) skip just that image. The reference run leaves those images out.
        Scenario("missing_release", sysext252: "aborts the whole merge on an image without a release file"),
        Scenario("release_fallback"),
        Scenario("release_symlink"),
        Scenario("release_only"),
        // 252 aborts the whole merge on an image carrying usr/lib/os-release (and still exits 0);
        // current systemd skips that image.
        Scenario("os_release_in_image", sysext252: "aborts the whole merge on an image with usr/lib/os-release"),
        Scenario("mixed_formats"),
        // Layering.
        Scenario("version_order"),
        Scenario("opt"),
        Scenario("opt_absent_on_host"),
        Scenario("opt_symlink"),
        Scenario("usr_is_mount"),
        Scenario("many_layers"),
        Scenario("empty_opt_on_host"),
        // 252 leaves the merged hierarchies at 0755; v256+ chmods the metadata (top) layer to the
        // mode of the hierarchy it covers. The reference listing is corrected to that.
        Scenario("hierarchy_mode", sysext252: "merged /usr and /opt are 0755 whatever the root's mode (v256+ keeps it)"),
    ]

    static let driver = Sandbox.packageRoot + "/Tests/Differential/run.sh"

    /// The list above and the scenario functions in scenarios.sh name the same scenarios.
    @Test func everyScenarioIsListed() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Self.driver, "--list"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let defined = Set(String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init))
        let listed = Set(Self.scenarios.map(\.name))
        #expect(process.terminationStatus == 0)
        #expect(defined.subtracting(listed).sorted() == [], "scenarios in scenarios.sh missing from DifferentialTests.scenarios")
        #expect(listed.subtracting(defined).sorted() == [], "scenarios in DifferentialTests.scenarios missing from scenarios.sh")
        #expect(listed.count >= 15)
    }

    @Test(.enabled(if: getuid() == 0, "needs root: loop devices, mounts, systemd-sysext (skipped when not root)"),
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-sysext") ||
                       FileManager.default.isExecutableFile(atPath: "/bin/systemd-sysext"),
                   "needs systemd-sysext"),
          arguments: scenarios)
    func sameMergeAsSystemdSysext(_ scenario: Scenario) throws {
        let r = try Sandbox.run("exec bash '\(Self.driver)' '\(scenario.name)'", timeout: 120)
        let logs = r.stdout.split(separator: "\n").filter { $0.hasPrefix("LOG ") }.joined(separator: "\n")
        try #require(r.status == 0 && r["scenario"] == scenario.name,
                     "the driver failed (status \(r.status)):\n\(r.stderr)\n\(r.stdout.suffix(3000))")
        let facts = r.facts
        func fact(_ key: String) -> String { facts[key] ?? "(missing)" }
        func names(_ key: String) -> [String] { fact(key).split(separator: " ").map(String.init).sorted() }
        let expected = fact("expect")
        let expectedNames = expected.split(separator: " ").map(String.init).sorted()

        // The reference (252, or 252 on the adjusted root) merges what current systemd merges; if
        // not, the scenario itself is wrong, not earlyext.
        #expect(fact("ref_rc") == "0", "reference systemd-sysext run failed; scenario broken?\n\(logs)")
        #expect(names("ref_merged") == expectedNames,
                "reference systemd-sysext merged [\(fact("ref_merged"))], scenario expects [\(expected)]; scenario broken?")

        // earlyext: the modern verdicts, in the modern layer order.
        #expect(fact("earlyext_rc") == fact("expect_earlyext_rc"), "earlyext exit status\n\(logs)")
        #expect(names("earlyext_merged") == expectedNames,
                "earlyext merged [\(fact("earlyext_merged"))], expected [\(expected)]\n\(logs)")
        #expect(names("earlyext_merged") == names("ref_merged"),
                "verdicts differ: earlyext [\(fact("earlyext_merged"))], systemd-sysext [\(fact("ref_merged"))]")
        #expect(fact("earlyext_order") == (expected.isEmpty ? "-" : expected),
                "usr/.systemd-sysext/extensions order")
        #expect(fact("earlyext_order") == fact("ref_order"), "usr/.systemd-sysext/extensions differ from systemd-sysext's")
        #expect(fact("earlyext_order_opt") == fact("ref_order_opt"), "opt/.systemd-sysext/extensions differ from systemd-sysext's")

        // The merged trees.
        let diff = r.stdout.split(separator: "\n").filter { $0.hasPrefix("DIFF ") }.map { $0.dropFirst(5) }
        #expect(fact("same_tree") == "yes",
                """
                merged trees differ (- systemd-sysext, + earlyext; \(fact("diff_lines")) lines, first 20):
                \(diff.prefix(20).joined(separator: "\n"))
                \(logs)
                """)

        // Mount flags: read-only and nodev, as current systemd mounts them. (252 mounts without
        // nodev, so its flags are not compared; see README.md.)
        for h in ["usr", "opt"] {
            let ours = fact("earlyext_flags_\(h)"), theirs = fact("ref_flags_\(h)")
            if theirs == "-" {
                #expect(ours == "-", "earlyext mounted \(h), systemd-sysext did not")
            } else {
                #expect(ours == "ro nodev", "flags of the overlay on \(h): \(ours)")
            }
        }

        // Where 252 differs, check that it still does what the quirk says, as long as the host's
        // systemd-sysext is the 252 the quirks were recorded with.
        if let quirk = scenario.sysext252 {
            #expect(!fact("quirk").isEmpty, "DifferentialTests says 252 differs (\(quirk)), scenarios.sh has no quirk252")
            if fact("sysext_version") == "252" {
                #expect(names("sysext252_merged") == names("expect_252"),
                        "252 (\(quirk)) merged [\(fact("sysext252_merged"))], recorded [\(fact("expect_252"))]")
                switch fact("expect_252_rc") {
                case "any": break
                case "fail": #expect(fact("sysext252_rc") != "0", "252 (\(quirk)) was expected to fail")
                case let rc: #expect(fact("sysext252_rc") == rc, "252 (\(quirk)) exit status")
                }
            }
        } else {
            #expect(fact("quirk").isEmpty, "scenarios.sh records a 252 quirk (\(fact("quirk"))) that DifferentialTests does not list")
        }
    }
}
