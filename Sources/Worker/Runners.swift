import HeraldSupport
import Synchronization

/// Long-lived tasks that take a consumer's messages in turn, instead of a new task per
/// message.
///
/// A task's allocator keeps the slabs its async frames needed; a message's processing needs
/// some 25 KiB of them, so a task made per message allocated and freed about eleven slabs
/// with `malloc` (and most were large enough to make glibc consolidate its free lists). A
/// runner keeps its slabs from one message to the next. A message never waits for a runner:
/// when none is idle, `submit` asks for another, so there are as many runners as messages
/// were ever in hand at once (the prefetch bounds them, three windows while stragglers are
/// held beside a new one: `Stragglers`) and the idle ones wait in `next`.
package final class Runners<Item: Sendable>: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: UnsafeContinuation<Item?, Never>
    }

    private struct State {
        var items = FIFO<Item>()
        /// Idle runners, the most recent last: it takes the next item, warm in the caches.
        var idle: [Waiter] = []
        var nextWaiter: UInt64 = 0
        var runners = 0
        var closed = false
    }

    private enum Taken {
        case item(Item)
        case wait(UInt64)
    }

    private let state = Mutex(State())

    package init() {}

    /// How many runners were asked for.
    package var count: Int { state.withLock { $0.runners } }

    /// How many runners wait for an item now.
    package var idle: Int { state.withLock { $0.idle.count } }

    /// Hands `item` to an idle runner; returns `true` when none was idle and the caller must
    /// start a runner (a task looping on `next`), which will take it.
    package func submit(_ item: Item) -> Bool {
        let (waiter, start) = state.withLock { state -> (UnsafeContinuation<Item?, Never>?, Bool) in
            if let waiter = state.idle.popLast() { return (waiter.continuation, false) }
            state.items.append(item)
            state.runners += 1
            return (nil, true)
        }
        waiter?.resume(returning: item)
        return start
    }

    /// The next item, waiting while there is none; nil once the runners are closed and every
    /// item was taken, or when the calling task is cancelled.
    package func next() async -> Item? {
        // An item already queued (a new runner's first) is taken without suspending.
        let id: UInt64
        switch state.withLock({ state -> Taken in
            if let item = state.items.popFirst() { return .item(item) }
            state.nextWaiter += 1
            return .wait(state.nextWaiter)
        }) {
        case .item(let item): return item
        case .wait(let waiter): id = waiter
        }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                let ready: Item?? = state.withLock { state in
                    if let item = state.items.popFirst() { return .some(item) }
                    // Checked under the lock: a cancellation after it finds the waiter below.
                    if state.closed || Task.isCancelled { return .some(nil) }
                    state.idle.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.idle.firstIndex(where: { $0.id == id }) else { return nil }
                return state.idle.remove(at: index)
            }
            waiter?.continuation.resume(returning: nil)
        }
    }

    /// No more items: idle runners end, busy ones end after the items still queued.
    package func close() {
        let waiters = state.withLock { state -> [Waiter] in
            state.closed = true
            defer { state.idle.removeAll() }
            return state.idle
        }
        for waiter in waiters { waiter.continuation.resume(returning: nil) }
    }
}
