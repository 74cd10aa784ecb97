import Foundation
import Synchronization

/// A dedicated OS thread that runs blocking jobs one after another.
///
/// C handles that are not thread-safe (a libpq `PGconn`) belong to one of these: every
/// call on the handle is a job on its thread, so it never runs concurrently and never
/// blocks Swift's cooperative pool.
package final class SerialThread: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let signal = NSCondition()
    package let name: String

    package init(name: String) {
        self.name = name
        startNamedThread(name) { [self] in self.loop() }
    }

    /// Runs `body` on the thread and returns its result. Fails with
    /// `SerialThreadStopped` once `stop()` was called.
    package func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withThrowingContinuation { continuation in
            let accepted = enqueue {
                continuation.resume(with: Result { try body() })
            }
            if !accepted { continuation.resume(throwing: SerialThreadStopped(name: name)) }
        }
    }

    /// Queues a job without waiting for it; false if the thread has stopped.
    @discardableResult
    package func enqueue(_ job: @escaping @Sendable () -> Void) -> Bool {
        let accepted = state.withLock { state in
            guard !state.stopping else { return false }
            state.jobs.append(job)
            return true
        }
        if accepted {
            signal.lock()
            signal.signal()
            signal.unlock()
        }
        return accepted
    }

    /// Lets queued jobs finish, then ends the thread. Later `run` calls fail.
    package func stop() {
        state.withLock { $0.stopping = true }
        signal.lock()
        signal.signal()
        signal.unlock()
    }

    private func loop() {
        // The queue and this array trade buffers, so a turn allocates nothing: copying the
        // queue out and emptying it would make a fresh buffer of its capacity every turn.
        var jobs: [@Sendable () -> Void] = []
        while true {
            let stopping = state.withLock { state in
                swap(&jobs, &state.jobs)
                return state.stopping
            }
            for job in jobs { job() }
            let ran = !jobs.isEmpty
            jobs.removeAll(keepingCapacity: true)
            if !ran {
                if stopping { return }
                signal.lock()
                let idle = state.withLock { $0.jobs.isEmpty && !$0.stopping }
                if idle { signal.wait() }
                signal.unlock()
            }
        }
    }
}

/// A job was offered to a `SerialThread` after it was stopped.
package struct SerialThreadStopped: Error, CustomStringConvertible {
    package let name: String
    package var description: String { "thread \(name) has stopped" }
}
