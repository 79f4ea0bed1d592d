import CCrypto
import Glibc

/// A running SHA-256, on OpenSSL's EVP digest API. Bytes are fed as they arrive
/// (`EVP_DigestUpdate`), so a download is hashed while it streams, never read back.
///
/// `pipelined`: the bytes are copied into 1 MiB chunks and hashed on a thread of their own, so
/// that hashing overlaps the transfer instead of following it (at most 16 chunks wait; the
/// producer waits when the hasher falls behind). `hexDigest()` and `reset()` wait for the queue.
final class SHA256 {
    /// The EVP_MD_CTX, freed with the object.
    private var context: OpaquePointer
    private let pipeline: HashPipeline?

    /// EVP_MD_CTX_new() + EVP_DigestInit_ex(EVP_sha256()).
    init(pipelined: Bool = false) {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        self.context = context
        pipeline = pipelined ? HashPipeline(context: context) : nil
        reset()
    }

    deinit {
        pipeline?.stop()
        EVP_MD_CTX_free(context)
    }

    /// EVP_DigestInit_ex(): starts over.
    func reset() {
        pipeline?.drain(discarding: true)
        guard EVP_DigestInit_ex(context, ee_evp_sha256(), nil) == 1 else { fatalError("EVP_DigestInit_ex(sha256) failed") }
    }

    /// EVP_DigestUpdate() (on the hashing thread, when pipelined).
    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if let pipeline {
            pipeline.feed(bytes)
        } else {
            _ = EVP_DigestUpdate(context, base, bytes.count)
        }
    }

    func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// EVP_DigestFinal_ex() on a copy (EVP_MD_CTX_copy_ex), so the running digest can go on:
    /// lowercase hex.
    func hexDigest() -> String {
        pipeline?.drain(discarding: false)
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

/// The hashing thread of a pipelined SHA256: a bounded queue of chunks, a mutex and two
/// condition variables (pthread_mutex_lock(3), pthread_cond_wait(3)).
final class HashPipeline: @unchecked Sendable {
    static let chunkSize = 1 << 20
    static let maxQueued = 16
    private let context: OpaquePointer
    private var pending: [UInt8] = []
    private var queue: [[UInt8]] = []
    private var busy = false
    private var stopping = false
    private var discarding = false
    private var thread: pthread_t?
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()

    init(context: OpaquePointer) {
        self.context = context
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        pending.reserveCapacity(Self.chunkSize)
    }

    deinit {
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    /// Copies `bytes` into the current chunk; a full chunk goes to the hashing thread.
    func feed(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes[...]
        while !rest.isEmpty {
            let take = min(Self.chunkSize - pending.count, rest.count)
            pending.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
            if pending.count == Self.chunkSize { submit() }
        }
    }

    private func submit() {
        guard !pending.isEmpty else { return }
        if thread == nil { thread = startThread { [unowned self] in self.work() } }
        guard thread != nil else {  // no thread: hash here
            _ = pending.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
            pending.removeAll(keepingCapacity: true)
            return
        }
        pthread_mutex_lock(&mutex)
        while queue.count >= Self.maxQueued { pthread_cond_wait(&changed, &mutex) }
        queue.append(pending)
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        pending = []
        pending.reserveCapacity(Self.chunkSize)
    }

    /// Waits until every byte fed so far is hashed (or, `discarding`, dropped).
    func drain(discarding: Bool) {
        if discarding { pending.removeAll(keepingCapacity: true) } else { submit() }
        guard thread != nil else { return }
        pthread_mutex_lock(&mutex)
        if discarding { queue.removeAll() }
        while !queue.isEmpty || busy { pthread_cond_wait(&changed, &mutex) }
        pthread_mutex_unlock(&mutex)
    }

    func stop() {
        guard let thread else { return }
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        pthread_join(thread, nil)
        self.thread = nil
    }

    private func work() {
        pthread_mutex_lock(&mutex)
        while true {
            while queue.isEmpty && !stopping { pthread_cond_wait(&changed, &mutex) }
            if queue.isEmpty && stopping { break }
            let chunk = queue.removeFirst()
            busy = true
            pthread_mutex_unlock(&mutex)
            _ = chunk.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
            pthread_mutex_lock(&mutex)
            busy = false
            pthread_cond_broadcast(&changed)
        }
        pthread_mutex_unlock(&mutex)
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
