import CCrypto
import Glibc

/// A running SHA-256, on OpenSSL's EVP digest API. Bytes are fed as they arrive
/// (`EVP_DigestUpdate`), so a download is hashed while it streams, never read back.
///
/// `pipelined`: the bytes are copied into 1 MiB chunks and hashed on a thread of their own, so
/// that hashing overlaps the transfer instead of following it (at most 16 chunks wait; the
/// producer waits when the hasher falls behind; chunk buffers are reused, so the copy does not
/// fault in fresh pages). `hexDigest()` and `reset()` wait for the queue. `offThread` runs other
/// small jobs of the transfer (starting writeback) on the same thread.
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

    /// Runs `job` on the hashing thread, after the chunks queued before it (at once, here, when
    /// not pipelined). `hexDigest()`, `reset()` and deinit wait for it.
    func offThread(_ job: @escaping () -> Void) {
        if let pipeline { pipeline.perform(job) } else { job() }
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
    /// What the hashing thread does next: hash `count` bytes of a chunk buffer, or run a job.
    private enum Work {
        case chunk(UnsafeMutableRawBufferPointer, count: Int)
        case job(() -> Void)
    }
    private let context: OpaquePointer
    /// The chunk being filled, and how much of it is.
    private var pending: UnsafeMutableRawBufferPointer?
    private var pendingCount = 0
    private var queue: [Work] = []
    /// Chunk buffers the thread is done with, for `pending` to reuse: their pages are already
    /// faulted in, and they are freed with the pipeline.
    private var spare: [UnsafeMutableRawBufferPointer] = []
    private var busy = false
    private var stopping = false
    private var thread: pthread_t?
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()

    init(context: OpaquePointer) {
        self.context = context
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
    }

    deinit {
        pending?.deallocate()
        for buffer in spare { buffer.deallocate() }
        for case .chunk(let buffer, _) in queue { buffer.deallocate() }
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    /// Copies `bytes` into the current chunk; a full chunk goes to the hashing thread.
    func feed(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while !rest.isEmpty {
            let chunk = pending ?? takeBuffer()
            pending = chunk
            let take = min(Self.chunkSize - pendingCount, rest.count)
            (chunk.baseAddress! + pendingCount).copyMemory(from: rest.baseAddress!, byteCount: take)
            pendingCount += take
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            if pendingCount == Self.chunkSize { submit() }
        }
    }

    /// Queues `job` for the hashing thread (runs it here if there can be no thread).
    func perform(_ job: @escaping () -> Void) {
        guard startIfNeeded() else { return job() }
        enqueue(.job(job))
    }

    /// A spare chunk buffer, or a new one.
    private func takeBuffer() -> UnsafeMutableRawBufferPointer {
        pthread_mutex_lock(&mutex)
        let reused = spare.popLast()
        pthread_mutex_unlock(&mutex)
        return reused ?? .allocate(byteCount: Self.chunkSize, alignment: 64)
    }

    /// Starts the hashing thread on first use; false if none could be made.
    private func startIfNeeded() -> Bool {
        if thread == nil { thread = startThread { [unowned self] in self.work() } }
        return thread != nil
    }

    private func enqueue(_ work: Work) {
        pthread_mutex_lock(&mutex)
        while queue.count >= Self.maxQueued { pthread_cond_wait(&changed, &mutex) }
        queue.append(work)
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }

    private func submit() {
        guard let chunk = pending, pendingCount > 0 else { return }
        guard startIfNeeded() else {  // no thread: hash here
            _ = EVP_DigestUpdate(context, chunk.baseAddress, pendingCount)
            pendingCount = 0
            return
        }
        enqueue(.chunk(chunk, count: pendingCount))
        pending = nil
        pendingCount = 0
    }

    /// Waits until every byte fed so far is hashed (or, `discarding`, dropped), and every job ran.
    func drain(discarding: Bool) {
        if discarding { pendingCount = 0 } else { submit() }
        guard thread != nil else { return }
        pthread_mutex_lock(&mutex)
        if discarding {
            queue.removeAll { work in
                guard case .chunk(let buffer, _) = work else { return false }
                spare.append(buffer)
                return true
            }
            pthread_cond_broadcast(&changed)
        }
        while !queue.isEmpty || busy { pthread_cond_wait(&changed, &mutex) }
        pthread_mutex_unlock(&mutex)
    }

    /// Lets the thread finish the queue, and joins it.
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
            let next = queue.removeFirst()
            busy = true
            pthread_cond_broadcast(&changed)
            pthread_mutex_unlock(&mutex)
            switch next {
            case .chunk(let buffer, let count):
                _ = EVP_DigestUpdate(context, buffer.baseAddress, count)
            case .job(let job):
                job()
            }
            pthread_mutex_lock(&mutex)
            if case .chunk(let buffer, _) = next { spare.append(buffer) }
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
