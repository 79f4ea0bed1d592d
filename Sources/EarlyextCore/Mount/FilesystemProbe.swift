import CMount
import Glibc

/// The filesystem types earlyext mounts from image files and block devices.
public enum ImageFilesystem: String, CaseIterable, Sendable {
    case squashfs, erofs, ext4, btrfs

    /// blkid_do_safeprobe(3) on an open image or block device: the type is read from the
    /// superblock, never guessed from the file name. A type earlyext does not mount, or no
    /// filesystem at all, is an error naming what was found. `offset` and `size` (bytes; 0 = to
    /// the end) probe one region: a plain image's bytes are probed in the file itself, before a
    /// loop device exists, which costs no loop-device I/O and refuses garbage before attaching.
    public static func probe(_ fd: Int32, path: String, offset: UInt64 = 0, size: UInt64 = 0) throws -> ImageFilesystem {
        guard let probe = blkid_new_probe() else {
            throw EarlyextError(.invalidImage, "\(path): cannot allocate a blkid probe", errno: .current)
        }
        defer { blkid_free_probe(probe) }
        guard blkid_probe_set_device(probe, fd, blkid_loff_t(offset), blkid_loff_t(size)) == 0 else {
            throw EarlyextError(.invalidImage, "\(path): cannot probe", errno: .current)
        }
        blkid_probe_enable_superblocks(probe, 1)
        blkid_probe_set_superblocks_flags(probe, BLKID_SUBLKS_TYPE)
        blkid_probe_enable_partitions(probe, 1)
        // Only the filesystems earlyext mounts: probing all ~60 types costs more than the mount.
        withSupportedTypeNames { names in
            _ = blkid_probe_filter_superblocks_type(probe, BLKID_FLTR_ONLYIN, names)
        }
        switch blkid_do_safeprobe(probe) {
        case 0: break
        case 1: throw EarlyextError(.invalidImage, "\(path): no filesystem found (not a squashfs, erofs, ext4 or btrfs image)")
        case -2: throw EarlyextError(.invalidImage, "\(path): ambiguous content (more than one filesystem signature)")
        default: throw EarlyextError(.invalidImage, "\(path): probing failed", errno: .current)
        }
        var value: UnsafePointer<CChar>? = nil
        if blkid_probe_lookup_value(probe, "TYPE", &value, nil) == 0, let value {
            let type = String(cString: value)
            guard let known = ImageFilesystem(rawValue: type) else {
                throw EarlyextError(.invalidImage, "\(path): \(type) is not a supported image filesystem (squashfs, erofs, ext4, btrfs)")
            }
            return known
        }
        if blkid_probe_lookup_value(probe, "PTTYPE", &value, nil) == 0, let value {
            throw EarlyextError(.invalidImage, "\(path): a \(String(cString: value)) partition table; disk images are not supported yet")
        }
        throw EarlyextError(.invalidImage, "\(path): no filesystem found")
    }

    /// A NULL-terminated C array of the supported type names, for blkid's filter.
    static func withSupportedTypeNames<R>(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let copies = allCases.map { strdup($0.rawValue) }
        defer { copies.forEach { free($0) } }
        var array: [UnsafeMutablePointer<CChar>?] = copies + [nil]
        return array.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }
}
