import CCrypto
import Glibc

/// A running SHA-256, on OpenSSL's EVP digest API. Bytes are fed as they arrive
/// (`EVP_DigestUpdate`), so a download is hashed while it streams, never read back (`ImageWriter`
/// feeds it from a thread of its own).
final class SHA256 {
    /// The EVP_MD_CTX, freed with the object.
    private var context: OpaquePointer

    /// EVP_MD_CTX_new() + EVP_DigestInit_ex(EVP_sha256()).
    init() {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        self.context = context
        reset()
    }

    deinit { EVP_MD_CTX_free(context) }

    /// EVP_DigestInit_ex(): starts over.
    func reset() {
        guard EVP_DigestInit_ex(context, ee_evp_sha256(), nil) == 1 else { fatalError("EVP_DigestInit_ex(sha256) failed") }
    }

    /// EVP_DigestUpdate().
    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        _ = EVP_DigestUpdate(context, base, bytes.count)
    }

    func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// EVP_DigestFinal_ex() on a copy (EVP_MD_CTX_copy_ex), so the running digest can go on:
    /// lowercase hex.
    func hexDigest() -> String {
        guard let copy = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        defer { EVP_MD_CTX_free(copy) }
        _ = EVP_MD_CTX_copy_ex(copy, context)
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = EVP_DigestFinal_ex(copy, &digest, &length)
        return hexString(digest[0..<Int(length)])
    }

    /// The SHA-256 of `bytes`, in hex.
    static func hexDigest(of bytes: [UInt8]) -> String {
        let hasher = SHA256()
        hasher.update(bytes)
        return hasher.hexDigest()
    }
}

/// Lowercase hex of `bytes`.
func hexString<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xf)])
    }
    return String(decoding: out, as: UTF8.self)
}
