internal import CCurl
import Synchronization
import HeraldSupport

/// The easy handles of finished transfers, reset, for the next ones: making a handle
/// zeroed some 5 KiB and allocated its 16 KiB receive buffer for every request, among the
/// largest allocations a delivery made. `curl_easy_reset` clears every option a transfer
/// set (URL, method, headers, body, callbacks and their data) and keeps the buffers.
final class EasyHandles: Sendable {
    /// A handle out of any multi handle, owned by whoever holds it, with the memory
    /// libcurl reads and writes in place during a transfer: its error message, the request
    /// body (`CURLOPT_POSTFIELDS`) and the header list (`CURLOPT_HTTPHEADER`, whose nodes
    /// and lines libcurl reads where they are), written here rather than allocated for
    /// each request, as `curl_slist_append` and `CURLOPT_COPYPOSTFIELDS` would.
    struct Handle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        private(set) var scratch: UnsafeMutableRawBufferPointer

        /// `CURL_ERROR_SIZE` bytes for libcurl's error message (bound to `CChar` when the
        /// scratch memory is made).
        var errorBuffer: UnsafeMutablePointer<CChar> { scratch.baseAddress!.assumingMemoryBound(to: CChar.self) }

        /// Writes `body`, then a header list of `Expect:` (no `100-continue` round trip
        /// before larger bodies) and `headers`, after the error message, growing the
        /// scratch memory if needed.
        mutating func hold(
            body: ArraySlice<UInt8>, headers: [(name: String, value: String)]
        ) -> (body: UnsafeMutableRawPointer, headers: UnsafeMutablePointer<curl_slist>) {
            let expect = "Expect:"
            let nodeSize = MemoryLayout<curl_slist>.stride
            let count = headers.count + 1
            let nodesStart = (Handle.errorSize + body.count + nodeSize - 1) / nodeSize * nodeSize
            let textStart = nodesStart + count * nodeSize
            let textSize = headers.reduce(expect.utf8.count + 1) { $0 + $1.name.utf8.count + $1.value.utf8.count + 3 }
            if scratch.count < textStart + textSize {
                scratch.deallocate()
                scratch = Handle.allocate(textStart + textSize)
            }
            let base = scratch.baseAddress!
            body.withUnsafeBytes { bytes in
                if let source = bytes.baseAddress { (base + Handle.errorSize).copyMemory(from: source, byteCount: bytes.count) }
            }
            let nodes = (base + nodesStart).bindMemory(to: curl_slist.self, capacity: count)
            var text = textStart
            func line(_ index: Int, _ write: () -> Void) {
                let start = text
                write()
                (base + text).storeBytes(of: 0, as: UInt8.self)
                text += 1
                (nodes + index).initialize(
                    to: curl_slist(data: (base + start).assumingMemoryBound(to: CChar.self), next: index + 1 < count ? nodes + index + 1 : nil))
            }
            line(0) { text += (base + text).copyBytes(of: expect.utf8) }
            for (index, header) in headers.enumerated() {
                line(index + 1) {
                    text += (base + text).copyBytes(of: header.name.utf8)
                    (base + text).storeBytes(of: UInt8(ascii: ":"), as: UInt8.self)
                    (base + text + 1).storeBytes(of: UInt8(ascii: " "), as: UInt8.self)
                    text += 2
                    text += (base + text).copyBytes(of: header.value.utf8)
                }
            }
            return (base + Handle.errorSize, nodes)
        }

        fileprivate static let errorSize = Int(CURL_ERROR_SIZE)

        fileprivate static func allocate(_ bytes: Int) -> UnsafeMutableRawBufferPointer {
            let scratch = UnsafeMutableRawBufferPointer.allocate(
                byteCount: max(bytes, 4096), alignment: MemoryLayout<curl_slist>.alignment)
            scratch.baseAddress!.bindMemory(to: CChar.self, capacity: errorSize).initialize(repeating: 0, count: errorSize)
            return scratch
        }

        fileprivate init(pointer: UnsafeMutableRawPointer) {
            self.pointer = pointer
            scratch = Handle.allocate(0)
        }
    }

    private struct State {
        var idle: [Handle] = []
        var closed = false
    }

    /// Handles kept at most: about 3 MiB, and 0.5–2.5 MiB of their scratch memory. More
    /// transfers at once make handles anew.
    static let most = 128
    /// A handle keeps scratch memory up to this size (a body of about 16 KiB and its
    /// headers); a larger one, grown for a larger request, is freed with its transfer.
    static let scratchKept = 20 * 1024

    private let state = Mutex(State())

    /// An idle handle, reset, or a new one.
    func take() -> Handle? {
        if let handle = state.withLock({ $0.idle.popLast() }) { return handle }
        return curl_easy_init().map(Handle.init(pointer:))
    }

    /// Takes back the handle of a transfer that is over (no longer in the multi handle).
    func give(_ handle: Handle) {
        curl_easy_reset(handle.pointer)
        var handle = handle
        if handle.scratch.count > Self.scratchKept {
            handle.scratch.deallocate()
            handle = Handle(pointer: handle.pointer)
        }
        handle.errorBuffer[0] = 0
        let kept = state.withLock { state in
            guard !state.closed, state.idle.count < Self.most else { return false }
            state.idle.append(handle)
            return true
        }
        if !kept { Self.cleanUp(handle) }
    }

    private static func cleanUp(_ handle: Handle) {
        curl_easy_cleanup(handle.pointer)
        handle.scratch.deallocate()
    }

    /// Cleans up the idle handles; handles given back later are cleaned up at once.
    func close() {
        let idle = state.withLock { state in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
        for handle in idle { Self.cleanUp(handle) }
    }

    /// How many handles wait for a transfer (for tests).
    var idleCount: Int { state.withLock { $0.idle.count } }
}
