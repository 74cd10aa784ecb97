internal import CCurl
import Synchronization

/// The easy handles of finished transfers, reset, for the next ones: making a handle
/// zeroed some 5 KiB and allocated its 16 KiB receive buffer for every request, among the
/// largest allocations a delivery made. `curl_easy_reset` clears every option a transfer
/// set (URL, method, headers, body, callbacks and their data) and keeps the buffers.
final class EasyHandles: Sendable {
    /// A handle out of any multi handle, owned by whoever holds it.
    struct Handle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private struct State {
        var idle: [Handle] = []
        var closed = false
    }

    /// Handles kept at most: about 3 MiB. More transfers at once make handles anew.
    static let most = 128

    private let state = Mutex(State())

    /// An idle handle, reset, or a new one.
    func take() -> UnsafeMutableRawPointer? {
        if let handle = state.withLock({ $0.idle.popLast() }) { return handle.pointer }
        return curl_easy_init()
    }

    /// Takes back the handle of a transfer that is over (no longer in the multi handle).
    func give(_ easy: UnsafeMutableRawPointer) {
        curl_easy_reset(easy)
        let kept = state.withLock { state in
            guard !state.closed, state.idle.count < Self.most else { return false }
            state.idle.append(Handle(pointer: easy))
            return true
        }
        if !kept { curl_easy_cleanup(easy) }
    }

    /// Cleans up the idle handles; handles given back later are cleaned up at once.
    func close() {
        let idle = state.withLock { state in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
        for handle in idle { curl_easy_cleanup(handle.pointer) }
    }

    /// How many handles wait for a transfer (for tests).
    var idleCount: Int { state.withLock { $0.idle.count } }
}
