import CCrypto
import Glibc

/// The certificates earlyext trusts to sign dm-verity root hashes: `*.crt` (PEM) files in
/// `ROOT/etc/verity.d`, `ROOT/run/verity.d`, `ROOT/usr/local/lib/verity.d` and
/// `ROOT/usr/lib/verity.d` (systemd's search path). A file name in an earlier dir overrides the
/// same name in a later one; an empty file or a symlink to /dev/null masks it.
public final class TrustStore: @unchecked Sendable {
    /// The trusted certificates (X509*), owned by this object.
    fileprivate let certificates: [OpaquePointer]
    /// Where each came from, for messages ("/etc/verity.d/vendor.crt").
    public let sources: [String]
    /// Files that could not be used, with the reason.
    public let problems: [String]

    public static let directories = ["/etc/verity.d", "/run/verity.d", "/usr/local/lib/verity.d", "/usr/lib/verity.d"]

    /// No trusted certificates: every signature is from an untrusted signer.
    public static let empty = TrustStore(certificates: [], sources: [], problems: [])

    private init(certificates: [OpaquePointer], sources: [String], problems: [String]) {
        self.certificates = certificates
        self.sources = sources
        self.problems = problems
    }

    deinit { certificates.forEach { X509_free($0) } }

    public var isEmpty: Bool { certificates.isEmpty }

    /// SHA-256 fingerprints (hex, of the DER encoding) of the trusted certificates.
    public var fingerprints: [String] { certificates.map(certificateFingerprint) }

    /// Reads the trusted certificates under `root` (missing dirs are fine).
    public static func load(root: String) throws -> TrustStore { try load(roots: [root]) }

    /// The certificates under every root in `roots` (in the initrd: the initrd's own, and
    /// /sysroot's, which Ignition may have written).
    public static func load(roots: [String]) throws -> TrustStore {
        var parts: [(String, String)] = []
        var warnings: [String] = []
        for root in roots {
            let files = try listConfigFiles(root: root, dirs: directories, suffixes: [".crt"])
            for file in files.files { parts.append((file.path, file.text)) }
            warnings += files.warnings
        }
        return fromPEM(parts, extraProblems: warnings)
    }

    /// From PEM texts: (name, text). Each text may hold several certificates.
    public static func fromPEM(_ texts: [(name: String, text: String)], extraProblems: [String] = []) -> TrustStore {
        var certificates: [OpaquePointer] = []
        var sources: [String] = []
        var problems = extraProblems
        for (name, text) in texts {
            let found = readPEMCertificates(Array(text.utf8))
            if found.isEmpty { problems.append("\(name): no PEM certificate, ignored") }
            for certificate in found {
                certificates.append(certificate)
                sources.append(name)
            }
        }
        return TrustStore(certificates: certificates, sources: sources, problems: problems)
    }
}

/// Every PEM certificate in `bytes` (X509*, to be freed by the caller).
private func readPEMCertificates(_ bytes: [UInt8]) -> [OpaquePointer] {
    guard !bytes.isEmpty else { return [] }
    return bytes.withUnsafeBytes { raw -> [OpaquePointer] in
        guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return [] }
        defer { BIO_free(bio) }
        var result: [OpaquePointer] = []
        while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { result.append(certificate) }
        ERR_clear_error() // the read that ends the loop leaves "no start line" behind
        return result
    }
}

/// SHA-256 of the DER encoding, lowercase hex: what `certificateFingerprint` holds in a signature
/// partition (systemd-repart computes it the same way) and `openssl x509 -fingerprint -sha256` shows.
func certificateFingerprint(_ certificate: OpaquePointer) -> String {
    var digest = [UInt8](repeating: 0, count: 64)
    var length: UInt32 = 0
    guard X509_digest(certificate, ee_evp_sha256(), &digest, &length) == 1 else { return "" }
    return hexString(digest[0..<Int(length)])
}

private func subjectName(_ certificate: OpaquePointer) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    X509_NAME_oneline(X509_get_subject_name(certificate), &buffer, Int32(buffer.count))
    return String(cString: buffer)
}

/// The last OpenSSL error as text, and the queue cleared.
private func openSSLError() -> String {
    var last: UInt = 0
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        last = code
    }
    guard last != 0 else { return "" }
    var buffer = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(last, &buffer, buffer.count)
    return String(cString: buffer)
}

/// What checking a root hash signature gave.
public enum SignatureCheck: Equatable, Sendable {
    /// The signature verifies over the root hash, and its signer is trusted.
    case trusted(signer: String, fingerprint: String)
    /// The PKCS#7 data is malformed, or does not verify over this root hash.
    case bad(String)
    /// It verifies, but by a certificate that is not trusted (or that cannot be found).
    case untrusted(String)
}

/// Verifies a detached PKCS#7 (DER) signature over the root hash, as systemd signs it and the
/// kernel checks it: the signed content is the root hash as lowercase hex, without a newline.
///
/// Trust: the signer's certificate must be one of `trust`'s certificates or chain up to one
/// (X509_V_FLAG_PARTIAL_CHAIN: a trusted certificate is an anchor even if it is not self-signed).
/// Validity dates are not checked: the initrd's clock is often wrong, and neither the kernel
/// nor systemd check them either. Any key usage is accepted, as the kernel does.
func checkRootHashSignature(_ signature: [UInt8], rootHash: [UInt8], trust: TrustStore) -> SignatureCheck {
    ERR_clear_error()
    guard !signature.isEmpty, signature.count <= SignatureLimits.maximumSignatureBytes else {
        return .bad("the signature is \(signature.count) bytes (expected 1 to \(SignatureLimits.maximumSignatureBytes))")
    }
    let parsed: UnsafeMutablePointer<PKCS7>? = signature.withUnsafeBufferPointer { buffer in
        var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
        return d2i_PKCS7(nil, &cursor, buffer.count)
    }
    guard let p7 = parsed else { return .bad("not a DER PKCS#7 structure (\(openSSLError()))") }
    defer { PKCS7_free(p7) }
    guard ee_pkcs7_is_signed(p7) != 0 else { return .bad("the PKCS#7 structure is not signedData") }
    guard ee_pkcs7_is_detached(p7) != 0 else { return .bad("the PKCS#7 signature carries content of its own; a detached signature is expected") }
    let signerCount = ee_pkcs7_signer_count(p7)
    guard signerCount >= 1 else { return .bad("the PKCS#7 signature has no signer") }

    // Trusted certificates double as candidate signers, for signatures made with -nocerts.
    guard let trusted = ee_sk_x509_new() else { return .bad("out of memory") }
    defer { ee_sk_x509_free(trusted) }
    for certificate in trust.certificates { _ = ee_sk_x509_push(trusted, certificate) }

    // 1. Find the signer certificates (embedded or trusted).
    guard let signers = PKCS7_get0_signers(p7, trusted, 0) else {
        ERR_clear_error()
        var buffer = [CChar](repeating: 0, count: 512)
        ee_pkcs7_signer_describe(p7, 0, &buffer, Int32(buffer.count))
        let who = String(cString: buffer)
        let trustNote = trust.isEmpty ? "; no trusted certificates are installed" : ""
        return .untrusted("the signer's certificate (\(who)) is neither in the signature nor trusted\(trustNote)")
    }
    defer { ee_sk_x509_free(signers) }

    // 2. The signature itself, over the hex root hash (no chain checks yet).
    let content = Array(hexString(rootHash).utf8)
    guard verifyContent(p7, trusted, content) else {
        let reason = openSSLError()
        if verifyContent(p7, trusted, content + [0x0A]) {
            ERR_clear_error()
            return .bad("the signature covers the root hash followed by a newline; sign the bare hex string (printf %s)")
        }
        ERR_clear_error()
        return .bad("the signature does not verify over root hash \(hexString(rootHash))\(reason.isEmpty ? "" : " (\(reason))")")
    }

    // 3. Each signer must be trusted.
    guard let store = X509_STORE_new() else { return .bad("out of memory") }
    defer { X509_STORE_free(store) }
    for certificate in trust.certificates { _ = X509_STORE_add_cert(store, certificate) }
    _ = X509_STORE_set_flags(store, UInt(ee_X509_V_FLAG_PARTIAL_CHAIN | ee_X509_V_FLAG_NO_CHECK_TIME))
    _ = X509_STORE_set_purpose(store, ee_X509_PURPOSE_ANY)
    var first: (String, String)?
    for index in 0..<ee_sk_x509_num(signers) {
        guard let signer = ee_sk_x509_value(signers, index) else { continue }
        guard let context = X509_STORE_CTX_new() else { return .bad("out of memory") }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_CTX_init(context, store, signer, ee_pkcs7_certificates(p7)) == 1 else {
            return .bad("cannot set up certificate verification (\(openSSLError()))")
        }
        if X509_verify_cert(context) != 1 {
            let error = X509_STORE_CTX_get_error(context)
            let text = String(cString: X509_verify_cert_error_string(Int(error)))
            ERR_clear_error()
            let trustNote = trust.isEmpty ? "; no trusted certificates are installed" : ""
            return .untrusted("signed by \(subjectName(signer)) (SHA-256 \(certificateFingerprint(signer))), which is not trusted: \(text)\(trustNote)")
        }
        if first == nil { first = (subjectName(signer), certificateFingerprint(signer)) }
    }
    guard let (signer, fingerprint) = first else { return .bad("the PKCS#7 signature has no signer") }
    return .trusted(signer: signer, fingerprint: fingerprint)
}

/// PKCS7_verify without chain verification: does the signature verify over `content`?
private func verifyContent(_ p7: UnsafeMutablePointer<PKCS7>, _ certificates: OpaquePointer, _ content: [UInt8]) -> Bool {
    content.withUnsafeBytes { raw in
        guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return false }
        defer { BIO_free(bio) }
        return PKCS7_verify(p7, certificates, nil, bio, nil, ee_PKCS7_NOVERIFY | ee_PKCS7_BINARY) == 1
    }
}

/// Size limits on signature data read from images and sidecars.
enum SignatureLimits {
    /// A DER PKCS#7 signature with a certificate chain is a few KiB.
    static let maximumSignatureBytes = 64 << 10
    /// The signature partition (systemd refuses more than 4 MiB too).
    static let maximumPartitionBytes: UInt64 = 4 << 20
    /// The JSON text in it.
    static let maximumJSONBytes = 64 << 10
}

/// The content of a `usr-verity-sig`/`root-verity-sig` partition:
/// `{"rootHash": "<hex>", "certificateFingerprint": "<hex>", "signature": "<base64 DER PKCS#7>"}`,
/// padded with NUL bytes to the partition size.
struct SignaturePartition: Equatable {
    var rootHash: [UInt8]
    var certificateFingerprint: String?
    var signature: [UInt8]

    /// Parses the partition bytes. The JSON must end at the first NUL, every byte after it must be
    /// NUL (systemd's rule), and the text must be at most `maximumJSONBytes`.
    static func parse(_ bytes: [UInt8]) throws(VerityError) -> SignaturePartition {
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        guard bytes[end...].allSatisfy({ $0 == 0 }) else {
            throw VerityError("the signature partition has data after the NUL that ends its JSON")
        }
        guard end > 0 else { throw VerityError("the signature partition is empty") }
        guard end <= SignatureLimits.maximumJSONBytes else {
            throw VerityError("the signature partition's JSON is \(end) bytes, more than \(SignatureLimits.maximumJSONBytes)")
        }
        let text = String(decoding: bytes[0..<end], as: UTF8.self)
        let json: JSON
        do { json = try JSON.parse(text) } catch {
            throw VerityError("the signature partition is not JSON: \(error)")
        }
        guard json.objectValue != nil else { throw VerityError("the signature partition's JSON is not an object") }
        guard let hashText = json["rootHash"]?.stringValue else {
            throw VerityError("the signature partition's JSON has no string 'rootHash'")
        }
        guard let rootHash = parseHex(hashText), rootHash.count >= 16 else {
            throw VerityError("the signature partition's 'rootHash' is not a hex root hash")
        }
        guard let signatureText = json["signature"]?.stringValue else {
            throw VerityError("the signature partition's JSON has no string 'signature'")
        }
        guard let signature = decodeBase64(signatureText), !signature.isEmpty else {
            throw VerityError("the signature partition's 'signature' is not base64")
        }
        var fingerprint: String?
        if let value = json["certificateFingerprint"] {
            guard let text = value.stringValue, let bytes = parseHex(text), bytes.count == 32 else {
                throw VerityError("the signature partition's 'certificateFingerprint' is not a SHA-256 in hex")
            }
            fingerprint = hexString(bytes)
        }
        return SignaturePartition(rootHash: rootHash, certificateFingerprint: fingerprint, signature: signature)
    }
}
