import Glibc

/// The network in the initrd, only when a download needs it.
///
/// earlyext first plans offline. When nothing must be fetched (the usual case after the first
/// boot) no network is brought up and no time is spent waiting for one. When something must be
/// fetched, the network comes up the way Ignition's does: systemd-networkd in the initrd (dracut's
/// `systemd-networkd` module). If neither the kernel command line (`ip=`, turned into
/// `/run/systemd/network` files by dracut) nor the initrd configured an interface, earlyext adds a
/// DHCP configuration for Ethernet interfaces. Then it starts systemd-networkd (and
/// systemd-resolved, if the initrd has it, for host names) and waits, with a bound, for a default
/// route.
enum InitrdNetwork {
    static let fallbackConfig = "/run/systemd/network/89-earlyext-dhcp.network"
    /// Where configuration for this machine lives: an admin's, or what dracut's `ip=` handling and
    /// systemd-network-generator wrote. Not /usr/lib/systemd/network: dracut's networkd module
    /// always ships vendor files there (containers, wifi examples) that match no NIC, and counting
    /// them left the initrd without a configured interface (found by the QEMU fetch scenario).
    static let configDirs = ["/etc/systemd/network", "/run/systemd/network"]

    /// Is there a default route (IPv4 /proc/net/route, or IPv6 ::/0 in /proc/net/ipv6_route)?
    static func hasDefaultRoute() -> Bool {
        if let routes = try? readTextFile(at: AT_FDCWD, "/proc/net/route") {
            for line in routes.split(separator: "\n").dropFirst() {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if fields.count > 3, fields[1] == "00000000", fields[0] != "lo" { return true }
            }
        }
        if let routes = try? readTextFile(at: AT_FDCWD, "/proc/net/ipv6_route") {
            for line in routes.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count == 10, fields[0] == "00000000000000000000000000000000", fields[1] == "00",
                   fields[9] != "lo" { return true }
            }
        }
        return false
    }

    static func hasNetworkConfig() -> Bool {
        configDirs.contains { dir in
            guard let fd = try? openPath(dir, O_RDONLY | O_DIRECTORY), let entries = try? directoryEntries(fd.rawValue) else { return false }
            return entries.contains { $0.name.hasSuffix(".network") }
        }
    }

    /// Brings the network up and waits up to `timeout` seconds for a default route.
    static func bringUp(timeout: Double, log: Log) throws {
        if hasDefaultRoute() { return }
        let started = monotonicMilliseconds()
        if !hasNetworkConfig() {
            do {
                try makeDirectories("/run/systemd/network", mode: 0o755)
                try writeTextFile(at: AT_FDCWD, fallbackConfig, """
                    # Written by earlyext: a download was needed and no interface was configured.
                    [Match]
                    Type=ether

                    [Network]
                    DHCP=yes

                    """)
            } catch {
                throw EarlyextError(.fetch, "cannot write \(fallbackConfig)", errno: error)
            }
        }
        guard let systemctl = Subprocess.locate("systemctl") else {
            throw EarlyextError(.fetch, "a download needs the network, but systemctl is not in the initrd")
        }
        log.info("a download needs the network: starting systemd-networkd")
        let networkd = try Subprocess(arguments: [systemctl, "start", "systemd-networkd.service"]).run()
        guard networkd.succeeded else {
            throw EarlyextError(.fetch, "cannot start systemd-networkd (is dracut's systemd-networkd module in the initrd?): \(networkd.lastLine)")
        }
        _ = try? Subprocess(arguments: [systemctl, "start", "systemd-resolved.service"]).run()
        while !hasDefaultRoute() {
            let waited = (monotonicMilliseconds() - started) / 1000
            if waited > timeout {
                throw EarlyextError(.fetch, "no network after \(Int(timeout)) s (no default route); the downloads are not possible")
            }
            usleep(100_000)
        }
        log.info("network up after \(String(format1: (monotonicMilliseconds() - started) / 1000)) s")
    }
}
