import HeraldSupport
import Synchronization

/// The deliveries of one consumer, in order, from the connection's thread to the task that
/// takes them: what `AsyncThrowingStream` did, for one element type and one reader. The
/// standard library's stream runs unspecialised and asked the runtime for its generic
/// types on every element (about 4,600 instructions per delivery).
///
/// As that stream: what was yielded before `finish` is still taken after it, then the
/// reader gets the error once, or nil; a reader's task cancelled while it waits ends the
/// stream (`finish()`).
package final class DeliveryStream: Sendable {
    private struct State {
        var pending = FIFO<Delivery>()
        /// The reader, waiting while nothing is pending.
        var reader: Continuation<Delivery?, any Error>?
        var ended = false
        /// Thrown to the reader once, after the pending deliveries.
        var failure: (any Error)?

        enum Taken {
            case delivery(Delivery)
            case end((any Error)?)
            case wait
        }

        mutating func take() -> Taken {
            if let delivery = pending.popFirst() { return .delivery(delivery) }
            guard ended else { return .wait }
            defer { failure = nil }
            return .end(failure)
        }
    }

    private let state = Mutex(State())

    init() {}

    /// Hands `delivery` to the reader, or keeps it for the reader's next call; dropped once
    /// the stream is finished.
    func yield(_ delivery: Delivery) {
        let reader = state.withLock { state -> Continuation<Delivery?, any Error>? in
            guard !state.ended else { return nil }
            // A reader waits only while nothing is pending.
            if let reader = state.reader {
                state.reader = nil
                return reader
            }
            state.pending.append(delivery)
            return nil
        }
        reader?.resume(returning: delivery)
    }

    /// Ends the stream after what is pending; the reader then gets `error` (once) or nil.
    func finish(throwing error: (any Error)? = nil) {
        let reader = state.withLock { state -> Continuation<Delivery?, any Error>? in
            guard !state.ended else { return nil }
            state.ended = true
            guard let reader = state.reader else {
                state.failure = error
                return nil
            }
            state.reader = nil
            return reader
        }
        guard let reader else { return }
        if let error { reader.resume(throwing: error) } else { reader.resume(returning: nil) }
    }

    /// Whether the reader waits for a delivery now.
    var readerWaits: Bool { state.withLock { $0.reader != nil } }

    /// Deliveries held: yielded and not yet taken.
    var held: Int { state.withLock { $0.pending.count } }

    /// The next delivery; nil once finished and drained, or after this task was cancelled.
    func next() async throws -> Delivery? {
        switch state.withLock({ $0.take() }) {
        case .delivery(let delivery): return delivery
        case .end(let error?): throw error
        case .end(nil): return nil
        case .wait: break
        }
        return try await withTaskCancellationHandler {
            try await withThrowingContinuation { (continuation: Continuation<Delivery?, any Error>) in
                let ready: Result<Delivery?, any Error>? = state.withLock { state in
                    switch state.take() {
                    case .delivery(let delivery): return .success(delivery)
                    case .end(let error?): return .failure(error)
                    case .end(nil): return .success(nil)
                    case .wait:
                        precondition(state.reader == nil, "a DeliveryStream has one reader at a time")
                        state.reader = continuation
                        return nil
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            finish()
        }
    }

    /// How `for try await` reads it.
    package struct Iterator: AsyncIteratorProtocol {
        let stream: DeliveryStream

        package mutating func next() async throws -> Delivery? {
            try await stream.next()
        }
    }
}
