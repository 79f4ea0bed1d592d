import CCryptsetup
import CKmod
import CShim
import Glibc

/// One libcryptsetup context for a dm-verity device: `crypt_init_data_device` with the hash device
/// and the data device, `crypt_load(CRYPT_VERITY)` (the superblock at the start of the hash
/// device), then activation. Messages libcryptsetup logs are kept for error text, not printed.
final class VerityContext {
    private var device: OpaquePointer?
    /// What libcryptsetup logged at error level, in order.
    private(set) var messages: [String] = []

    init(hashDevice: String, dataDevice: String) throws {
        if let problem = ee_cryptsetup_load_error() {
            throw EarlyextError(.mount, "cannot load \(EE_LIBCRYPTSETUP) for dm-verity: \(String(cString: problem))")
        }
        var cd: OpaquePointer?
        let r = ee_crypt_init_data_device(&cd, hashDevice, dataDevice)
        guard r == 0, let cd else {
            throw EarlyextError(.mount, "libcryptsetup cannot open \(hashDevice) and \(dataDevice)", errno: Errno(rawValue: -r))
        }
        device = cd
        ee_crypt_set_log_callback(cd, { level, message, context in
            guard let message, let context, level == ee_CRYPT_LOG_ERROR else { return }
            let me = Unmanaged<VerityContext>.fromOpaque(context).takeUnretainedValue()
            me.messages.append(String(cString: message).replacingNewlines().trimmingCharacters())
        }, Unmanaged.passUnretained(self).toOpaque())
        let loaded = ee_crypt_load(cd, ee_crypt_verity_type(), nil)
        guard loaded == 0 else {
            throw EarlyextError(.invalidImage, "libcryptsetup cannot load the verity superblock\(lastMessage)", errno: Errno(rawValue: -loaded))
        }
    }

    deinit { if let device { ee_crypt_free(device) } }

    /// ": <last message>" or "".
    var lastMessage: String { messages.last.map { ": \($0)" } ?? "" }

    /// The superblock as libcryptsetup read it, to compare with earlyext's own reading.
    func parameters() -> (dataBlocks: UInt64, dataBlockSize: UInt32, hashBlockSize: UInt32, hashName: String, saltSize: UInt32)? {
        var params = crypt_params_verity()
        guard ee_crypt_get_verity_info(device, &params) == 0 else { return nil }
        return (params.data_size, params.data_block_size, params.hash_block_size,
                params.hash_name.map { String(cString: $0) } ?? "", params.salt_size)
    }

    /// crypt_activate_by_signed_key, read-only: the kernel checks the signature against its
    /// keyrings. Returns 0 or a negative errno, as libcryptsetup does.
    func activateSigned(name: String, rootHash: [UInt8], signature: [UInt8]) -> Int32 {
        rootHash.withUnsafeBytes { hash in
            signature.withUnsafeBytes { sig in
                ee_crypt_activate_by_signed_key(device, name, hash.baseAddress?.assumingMemoryBound(to: CChar.self), hash.count,
                                             sig.baseAddress?.assumingMemoryBound(to: CChar.self), sig.count,
                                             ee_CRYPT_ACTIVATE_READONLY)
            }
        }
    }

    /// crypt_activate_by_volume_key with the root hash, read-only. With `name` nil libcryptsetup
    /// only checks; earlyext never uses that (its own user-space check covers the tree).
    func activate(name: String, rootHash: [UInt8]) -> Int32 {
        rootHash.withUnsafeBytes { hash in
            ee_crypt_activate_by_volume_key(device, name, hash.baseAddress?.assumingMemoryBound(to: CChar.self), hash.count,
                                         ee_CRYPT_ACTIVATE_READONLY)
        }
    }

    /// crypt_deactivate_by_name; `deferred`: when the last user closes it.
    @discardableResult
    func deactivate(name: String, deferred: Bool) -> Int32 {
        ee_crypt_deactivate_by_name(device, name, deferred ? ee_CRYPT_DEACTIVATE_DEFERRED : 0)
    }
}

/// The device-mapper side of the system.
public enum DeviceMapper {
    /// True if this kernel has device-mapper (the control node or the misc device exists).
    public static var available: Bool {
        access("/dev/mapper/control", F_OK) == 0 || access("/sys/class/misc/device-mapper", F_OK) == 0
    }

    /// Runs `body` holding the one lock for libcryptsetup: images are opened on several threads,
    /// and libcryptsetup's device-mapper layer keeps global state that is not thread-safe.
    static func serialized<T>(_ body: () throws -> T) rethrows -> T {
        _ = initialized
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return try body()
    }

    nonisolated(unsafe) private static var lock = pthread_mutex_t()
    private static let initialized: Bool = {
        pthread_mutex_init(&lock, nil)
        return true
    }()

    /// `available`, after loading dm_mod and dm_verity (libkmod, as modprobe would) if device-mapper
    /// is not there yet: in an initrd without the static /dev/mapper/control node nothing else
    /// would load it.
    static func prepare() -> Bool {
        if available { return true }
        guard let context = ee_kmod_new(nil, nil) else { return false }
        defer { ee_kmod_unref(context) }
        for name in ["dm_mod", "dm_verity"] {
            var list: OpaquePointer?
            guard ee_kmod_module_new_from_lookup(context, name, &list) == 0, let list else { continue }
            defer { ee_kmod_module_unref_list(list) }
            guard let module = ee_kmod_module_get_module(list) else { continue }
            defer { ee_kmod_module_unref(module) }
            _ = ee_kmod_module_probe_insert_module(module, 0)
        }
        return available
    }

    /// `dm_verity.require_signatures=1`: the kernel refuses verity devices without a signature.
    static var requiresSignatures: Bool {
        guard let fd = try? openPath("/sys/module/dm_verity/parameters/require_signatures", O_RDONLY),
              let bytes = try? readAll(fd.rawValue, limit: 16) else { return false }
        return bytes.first == UInt8(ascii: "Y") || bytes.first == UInt8(ascii: "1")
    }

    /// The /dev/dm-N node of the device named `name`: /sys/block/dm-*/dm/name is searched, so
    /// udev's /dev/mapper links are not needed (devtmpfs makes /dev/dm-N).
    static func node(named name: String) -> String? {
        guard let fd = try? openPath("/sys/block", O_RDONLY | O_DIRECTORY),
              let entries = try? directoryEntries(fd.rawValue) else { return nil }
        for entry in entries where entry.name.hasPrefix("dm-") {
            guard let text = try? readTextFile(at: fd.rawValue, entry.name + "/dm/name", limit: 256) else { continue }
            if text.trimmingCharacters() == name || text.split(separator: "\n").first.map(String.init) == name {
                return "/dev/" + entry.name
            }
        }
        return nil
    }

    /// A device-mapper name for image `name`: `earlyext-NAME-<first 12 hex of the root hash>`,
    /// with `-N` appended for the N-th retry. Characters device-mapper or udev dislike become `_`;
    /// the whole stays under 127 bytes.
    static func deviceName(image name: String, rootHash: String, attempt: Int) -> String {
        let safe = String(name.unicodeScalars.map { scalar -> Character in
            let ok = scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_.+".unicodeScalars.contains(scalar))
            return ok ? Character(scalar) : "_"
        }.prefix(80))
        let base = "earlyext-\(safe)-\(rootHash.prefix(12))"
        return attempt == 0 ? base : "\(base)-\(attempt)"
    }
}
