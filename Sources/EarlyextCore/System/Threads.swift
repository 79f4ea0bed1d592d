import Glibc

/// Runs `body` for every element on up to `threads` POSIX threads (pthread_create(3)) and
/// returns the results in the input's order. Opening an image is mostly waiting for the loop
/// device's I/O, so a few threads overlap those waits even on two CPUs.
func concurrentMap<Element, Result>(_ items: [Element], threads: Int, _ body: @escaping (Element) -> Result) -> [Result] {
    let workers = min(threads, items.count)
    guard workers > 1 else { return items.map(body) }
    let work = ConcurrentWork(items, body)
    var handles: [pthread_t] = []
    for _ in 1..<workers {
        if let handle = startThread(work.run) { handles.append(handle) }
    }
    work.run()
    for handle in handles { pthread_join(handle, nil) }
    return work.results.map { $0! }
}

/// pthread_create(3) running `body`; nil if no thread could be made (the caller does the work).
func startThread(_ body: @escaping () -> Void) -> pthread_t? {
    final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
    var handle = pthread_t()
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    let created = pthread_create(&handle, nil, { context in
        Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    guard created == 0 else {
        Unmanaged<Box>.fromOpaque(context).release()
        return nil
    }
    return handle
}

/// The shared state of `concurrentMap`: the next index to take, and the results.
final class ConcurrentWork<Element, Result>: @unchecked Sendable {
    let items: [Element]
    let body: (Element) -> Result
    var results: [Result?]
    var next = 0
    var lock = pthread_mutex_t()
    init(_ items: [Element], _ body: @escaping (Element) -> Result) {
        self.items = items
        self.body = body
        results = Array(repeating: nil, count: items.count)
        pthread_mutex_init(&lock, nil)
    }
    deinit { pthread_mutex_destroy(&lock) }
    /// Takes the next index, or nil when all are taken.
    func take() -> Int? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        guard next < items.count else { return nil }
        next += 1
        return next - 1
    }
    func store(_ index: Int, _ value: Result) {
        pthread_mutex_lock(&lock)
        results[index] = value
        pthread_mutex_unlock(&lock)
    }
    func run() { while let index = take() { store(index, body(items[index])) } }
}
