import CShim
import Glibc

/// Where the body of a downloading image goes. Each piece libcurl hands over is copied into a
/// page-aligned 1 MiB chunk; a full chunk is hashed on one thread (`SHA256`, EVP_DigestUpdate)
/// and written on another (pwrite(2)), so the transfer, the hash and the disk overlap, and the
/// bytes are never read back.
///
/// Chunks start at file offsets that are multiples of the chunk size, so whole chunks are written
/// through a second descriptor opened with O_DIRECT (open(2)): the image skips the page cache (it
/// is read through a direct-I/O loop device anyway), the copy into the page cache is saved, and the
/// fsync before the rename finds nothing left to write. A short chunk (the first after a resume,
/// the last one) and file systems that refuse O_DIRECT take the buffered descriptor, with
/// writeback started every 8 MiB (sync_file_range(2)).
///
/// At most 16 chunks are in flight: the transfer waits when the disk or the hash falls behind.
/// A write error is kept; the next `append` or `finish` throws it, and later chunks are not
/// written, so the file always holds a prefix of the body.
final class ImageWriter {
    static let chunkSize = 1 << 20
    static let maxChunks = 16

    /// The buffered descriptor of the file being written.
    var fd: Int32 { lanes.fd }
    /// The digest of the bytes before `offset` (a resumed prefix is hashed into it first). The
    /// hashing thread feeds it: read it only after `finish()`.
    var hasher: SHA256 { lanes.hasher }
    /// The bytes accepted so far: the file's length once `finish()` returns.
    private(set) var offset: Int64
    /// Chunks written through the O_DIRECT descriptor since the start or the last `restart()`
    /// (read it only after `finish()`).
    var directChunks: Int { lanes.directChunks }

    /// The chunk being filled.
    private var pending: Chunk?
    /// The two worker threads and what they share.
    private let lanes: ChunkLanes

    /// `file` holds `offset` bytes, already in `hasher`. Unless `direct` is false, a file open for
    /// writing is opened a second time with O_DIRECT (through /proc/self/fd: the same inode);
    /// where the file system refuses that, every chunk is written buffered. (The reopen checks the
    /// inode's permissions, not the descriptor's mode, so a read-only descriptor is not reopened.)
    init(file: OwnedDescriptor, offset: Int64, hasher: SHA256, direct: Bool = true) {
        self.offset = offset
        var directFile: OwnedDescriptor?
        let writable = fcntl(file.rawValue, F_GETFL) & O_ACCMODE != O_RDONLY
        if direct, writable, let reopened = try? openPath(file.procPath, O_WRONLY | ee_O_DIRECT) { directFile = OwnedDescriptor(reopened) }
        lanes = ChunkLanes(file: file, direct: directFile, hasher: hasher, writtenTo: offset)
    }

    /// Drops what was not written yet (a writer given up without `finish()` belongs to a failed
    /// download) and joins the threads.
    deinit {
        lanes.discardQueued()
        lanes.stop()
    }

    /// Takes `bytes` (copied): the next `bytes.count` bytes of the file. Throws a write error
    /// from an earlier chunk.
    func append(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
        guard var source = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let chunk: Chunk
            if let pending {
                chunk = pending
            } else {
                chunk = try lanes.takeChunk()
                chunk.start(at: offset)
                pending = chunk
            }
            let take = min(chunk.capacity - chunk.count, left)
            (chunk.memory.baseAddress! + chunk.count).copyMemory(from: source, byteCount: take)
            chunk.count += take
            offset += Int64(take)
            source += take
            left -= take
            if chunk.count == chunk.capacity { try submitPending() }
        }
    }

    /// Hands the chunk being filled to the threads and waits for them: every byte appended is
    /// then in the file and in the digest. Throws the first write error.
    func finish() throws(Errno) {
        try submitPending()
        try lanes.waitUntilIdle()
    }

    /// `finish()`, then the SHA-256 of the whole file, in hex.
    func hexDigest() throws(Errno) -> String {
        try finish()
        return hasher.hexDigest()
    }

    /// Drops everything not yet written, empties the file and the digest: the body starts again
    /// at byte 0.
    func restart() throws(Errno) {
        if let pending { lanes.recycle(pending) }
        pending = nil
        lanes.discardQueued()
        try truncateDescriptor(fd, to: 0)
        hasher.reset()
        offset = 0
    }

    private func submitPending() throws(Errno) {
        guard let chunk = pending else { return }
        pending = nil
        try lanes.submit(chunk)
    }
}

/// A chunk of the body, at `fileOffset`, held by the lanes it is queued on.
private final class Chunk {
    static let alignment = 4096
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: ImageWriter.chunkSize, alignment: Chunk.alignment)
    var count = 0
    var fileOffset: Int64 = 0
    var holders = 0
    deinit { memory.deallocate() }

    func start(at offset: Int64) {
        fileOffset = offset
        count = 0
    }
    /// How many bytes it takes: up to the next chunk-size boundary of the file.
    var capacity: Int { ImageWriter.chunkSize - Int(fileOffset % Int64(ImageWriter.chunkSize)) }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: memory[0..<count]) }
    /// Whether O_DIRECT takes it as it is: offset and length aligned to 4096, the largest logical
    /// block size in use (the buffer always is).
    var isAligned: Bool { fileOffset % Int64(Self.alignment) == 0 && count % Self.alignment == 0 }
}

/// The consuming side of an `ImageWriter`: a hashing and a writing thread (pthread_create(3)),
/// each with its queue, and the chunks they share, under one mutex and condition variable
/// (pthread_mutex_lock(3), pthread_cond_wait(3)). The threads hold this object, not the writer,
/// so the writer's deinit can stop them.
private final class ChunkLanes: @unchecked Sendable {
    static let writebackStep: Int64 = 8 << 20
    let file: OwnedDescriptor
    var fd: Int32 { file.rawValue }
    let hasher: SHA256
    /// The O_DIRECT descriptor; dropped (on the writing thread) if the file system refuses a
    /// direct write.
    private var direct: OwnedDescriptor?
    /// Where the buffered writes' early writeback has got to (writing thread).
    private var writebackFrom: Int64
    private(set) var directChunks = 0

    /// What waits for a worker thread, and whether it is working.
    private struct Lane {
        var queue: [Chunk] = []
        var busy = false
    }
    private static let hashing = 0, writing = 1
    /// Under the mutex.
    private var lanes = [Lane(), Lane()]
    /// The lanes' threads (nil: none could be made; the producer does that lane's work). Only the
    /// owner's thread touches them, so they are outside `lanes`.
    private var threads: [pthread_t?] = [nil, nil]
    private var threadsStarted = false
    /// Chunks both lanes are done with, for reuse (their pages are already faulted in).
    private var spare: [Chunk] = []
    private var allocated = 0
    /// The first write error.
    private var failure: Errno?
    private var stopping = false
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()

    init(file: OwnedDescriptor, direct: OwnedDescriptor?, hasher: SHA256, writtenTo offset: Int64) {
        self.file = file
        self.direct = direct
        self.hasher = hasher
        writebackFrom = offset
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
    }

    deinit {
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    /// Lets the threads finish their queues, and joins them.
    func stop() {
        locked {
            stopping = true
            pthread_cond_broadcast(&changed)
        }
        for case let thread? in threads { pthread_join(thread, nil) }
    }

    /// A spare chunk, a new one while fewer than `maxChunks` exist, or the next one a lane
    /// gives back. Throws the first write error.
    func takeChunk() throws(Errno) -> Chunk {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while spare.isEmpty, allocated >= ImageWriter.maxChunks, failure == nil { pthread_cond_wait(&changed, &mutex) }
        if let failure { throw failure }
        if let chunk = spare.popLast() { return chunk }
        allocated += 1
        return Chunk()
    }

    func recycle(_ chunk: Chunk) {
        locked { spare.append(chunk) }
    }

    /// Queues `chunk` on both lanes (a lane without a thread does its work here). Throws the
    /// first write error instead.
    func submit(_ chunk: Chunk) throws(Errno) {
        startThreads()
        pthread_mutex_lock(&mutex)
        if chunk.count == 0 || failure != nil {
            spare.append(chunk)
            let failure = self.failure
            pthread_mutex_unlock(&mutex)
            if let failure { throw failure }
            return
        }
        chunk.holders = lanes.count
        let inline = threads.indices.filter { threads[$0] == nil }
        for index in threads.indices where threads[index] != nil { lanes[index].queue.append(chunk) }
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        for index in inline {
            let error = work(index, chunk)
            locked { finished(chunk, error: error) }
        }
    }

    /// Waits until both queues are empty and both threads idle; throws the first write error.
    func waitUntilIdle() throws(Errno) {
        pthread_mutex_lock(&mutex)
        while lanes.contains(where: { !$0.queue.isEmpty || $0.busy }) { pthread_cond_wait(&changed, &mutex) }
        let failure = self.failure
        pthread_mutex_unlock(&mutex)
        if let failure { throw failure }
    }

    /// Drops every queued chunk, waits for the chunks in the threads' hands, forgets the error.
    func discardQueued() {
        locked {
            for index in lanes.indices {
                for chunk in lanes[index].queue { release(chunk) }
                lanes[index].queue = []
            }
            while lanes.contains(where: \.busy) { pthread_cond_wait(&changed, &mutex) }
            failure = nil
            writebackFrom = 0
            directChunks = 0
        }
    }

    private func startThreads() {
        guard !threadsStarted else { return }
        threadsStarted = true
        for index in threads.indices { threads[index] = startThread { [self] in serve(index) } }
    }

    /// A lane's thread: takes its chunks in order until `stop()`.
    private func serve(_ index: Int) {
        pthread_mutex_lock(&mutex)
        while true {
            while lanes[index].queue.isEmpty, !stopping { pthread_cond_wait(&changed, &mutex) }
            if lanes[index].queue.isEmpty { break }
            let chunk = lanes[index].queue.removeFirst()
            lanes[index].busy = true
            let skip = index == Self.writing && failure != nil
            pthread_mutex_unlock(&mutex)
            let error = skip ? nil : work(index, chunk)
            pthread_mutex_lock(&mutex)
            lanes[index].busy = false
            finished(chunk, error: error)
        }
        pthread_mutex_unlock(&mutex)
    }

    /// What lane `index` does with a chunk: hash it, or write it.
    private func work(_ index: Int, _ chunk: Chunk) -> Errno? {
        if index == Self.hashing {
            hasher.update(chunk.bytes)
            return nil
        }
        return write(chunk)
    }

    /// With the mutex held: keeps the first error, gives the chunk back when no lane holds it.
    private func finished(_ chunk: Chunk, error: Errno?) {
        if failure == nil, let error { failure = error }
        release(chunk)
        pthread_cond_broadcast(&changed)
    }

    /// With the mutex held.
    private func release(_ chunk: Chunk) {
        chunk.holders -= 1
        if chunk.holders == 0 { spare.append(chunk) }
    }

    /// pwrite(2) of a chunk at its offset: through the O_DIRECT descriptor when it is whole and
    /// aligned, else buffered. EINVAL from a direct write means this file system wants other
    /// alignment (or none): the chunk and all later ones go buffered.
    private func write(_ chunk: Chunk) -> Errno? {
        if let direct, chunk.isAligned {
            do {
                try writeAll(direct.rawValue, chunk.bytes, at: chunk.fileOffset)
                directChunks += 1
                return nil
            } catch let error where error == .invalid {
                self.direct = nil
            } catch {
                return error
            }
        }
        do {
            try writeAll(fd, chunk.bytes, at: chunk.fileOffset)
        } catch {
            return error
        }
        let end = chunk.fileOffset + Int64(chunk.count)
        if end - writebackFrom >= Self.writebackStep {
            _ = ee_sync_file_range(fd, writebackFrom, end - writebackFrom, ee_SYNC_FILE_RANGE_WRITE)
            writebackFrom = end
        }
        return nil
    }

    private func locked(_ body: () -> Void) {
        pthread_mutex_lock(&mutex)
        body()
        pthread_mutex_unlock(&mutex)
    }
}
