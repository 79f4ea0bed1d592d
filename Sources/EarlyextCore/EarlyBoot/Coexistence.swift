import Glibc

/// How earlyext's merge lives alongside systemd-sysext in the booted system.
///
/// The booted system's `systemd-sysext.service` runs `systemd-sysext refresh`: it would unmerge
/// earlyext's merge and merge again, leaving a moment without the extensions and dropping the
/// metadata layer with the module indexes. So a merge in the initrd (or of `/` at runtime) adds a
/// runtime drop-in that skips that service, and systemd v261's `systemd-sysext-sysroot.service`,
/// while earlyext's state record exists. Nothing is masked: `systemd-sysext status` and `list` keep
/// working and report the merge (it carries `.systemd-sysext/dev`), and a user can still run
/// `systemd-sysext` by hand. After `systemd-sysext unmerge`, `earlyext merge` brings the merge
/// back from the base it kept (docs/merge-engine.md). What the extensions ask of the service
/// manager (EXTENSION_RELOAD_MANAGER, EXTENSION_RESTART_UNITS) is `ManagerActions`.
public enum Coexistence {
    public static let units = ["systemd-sysext.service", "systemd-sysext-sysroot.service"]
    public static let dropInName = "50-earlyext.conf"

    /// Is this process running in the initrd (not: is ROOT an initrd)?
    public static var runningInInitrd: Bool { access("/etc/initrd-release", F_OK) == 0 }

    /// The drop-in's text.
    public static func dropIn(stateDir: String) -> String {
        """
        # Written by earlyext: the system extensions were merged by earlyext (see \(stateDir)/\(StateRecord.fileName)).
        # systemd-sysext's refresh would unmerge and merge them again: a moment without them, and
        # without the kernel module indexes earlyext generated. `earlyext refresh` swaps atomically.
        [Unit]
        ConditionPathExists=!\(stateDir)/\(StateRecord.fileName)

        """
    }

    /// Writes the drop-ins into `runtimeUnitDir` (/run/systemd/system), when the merge is of the
    /// system that will boot or is running: in the initrd, or with ROOT = /.
    static func install(environment: Environment, runtimeUnitDir: String = "/run/systemd/system", log: Log) {
        guard runningInInitrd || environment.root.isEmpty else { return }
        for unit in units {
            let dir = runtimeUnitDir + "/" + unit + ".d"
            do {
                try makeDirectories(dir, mode: 0o755)
                try writeTextFile(at: AT_FDCWD, dir + "/" + dropInName, dropIn(stateDir: environment.stateDir))
            } catch {
                log.warning("cannot write \(dir)/\(dropInName): \(error); \(unit) may replace the merge later")
            }
        }
    }
}
