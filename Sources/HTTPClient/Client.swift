internal import CCurl
import Foundation
import Glibc
import Synchronization
import HeraldSupport

/// An HTTP client over libcurl's multi interface: one driver thread runs every transfer
/// of this client concurrently and keeps connections alive between them.
///
/// Safe defaults for calling strangers' servers: redirects are never followed, only
/// http and https are spoken, no proxy is taken from the environment, signals are
/// not used, and an optional policy sees each address before the socket connects.
public final class Client: Sendable {
    public struct Configuration: Sendable {
        /// Connections kept alive in the cache across all hosts.
        public var maxCachedConnections: Int
        /// Concurrent connections to one host; 0 is unlimited.
        public var maxConnectionsPerHost: Int
        /// An explicit proxy URL; nil means none, whatever the environment says.
        public var proxy: String?
        /// Called with every address before connecting; false refuses it (`blocked`).
        public var addressPolicy: (@Sendable (SocketAddress) -> Bool)?

        public init(
            maxCachedConnections: Int = 256, maxConnectionsPerHost: Int = 0, proxy: String? = nil,
            addressPolicy: (@Sendable (SocketAddress) -> Bool)? = nil
        ) {
            self.maxCachedConnections = maxCachedConnections
            self.maxConnectionsPerHost = maxConnectionsPerHost
            self.proxy = proxy
            self.addressPolicy = addressPolicy
        }
    }

    private enum Command {
        case add(Transfer)
        case cancel(UInt64)
    }

    private struct Inbox {
        var commands: [Command] = []
        var shutdown = false
        /// The driver thread was started (by the first request).
        var driving = false
        /// The driver thread ended: a command posted now would never be read.
        var stopped = false
        var nextID: UInt64 = 1
    }

    private let multi: MultiHandle
    private let handles = EasyHandles()
    private let inbox = Mutex(Inbox())
    private let configuration: Configuration
    private let stopped = Mutex<[CheckedContinuation<Void, Never>]?>([])

    public init(configuration: Configuration = Configuration()) {
        _ = Self.globalInit
        self.configuration = configuration
        multi = MultiHandle(configuration: configuration)
    }

    /// libcurl's global state, set up once before any handle; SIGPIPE from a peer that
    /// closed the socket must not kill the process.
    private static let globalInit: Void = {
        signal(SIGPIPE, SIG_IGN)
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    /// Performs `request`; an HTTP response of any status returns, a failure to get
    /// one throws a classified `TransferError`.
    /// The driver thread starts with the first request, so a client that is made and
    /// never used (a throw before its service group runs) holds no thread.
    public func execute(_ request: Request) async throws(TransferError) -> Response {
        let admitted = inbox.withLock { state -> (id: UInt64, start: Bool)? in
            guard !state.shutdown else { return nil }
            defer {
                state.nextID += 1
                state.driving = true
            }
            return (state.nextID, !state.driving)
        }
        guard let (id, start) = admitted else { throw TransferError(.cancelled, message: "the client is shut down") }
        if start { startNamedThread("http-client") { [self] in self.drive() } }
        let transfer = try Transfer(id: id, request: request, configuration: configuration, handles: handles)
        let result: Result<Response, TransferError> = await withTaskCancellationHandler {
            await withContinuation { continuation in
                transfer.start(continuation)
                // A task cancelled before it got here posted its cancel before the transfer
                // existed for the driver, which would then have run it to its end: not sent.
                if Task.isCancelled {
                    transfer.fail(TransferError(.cancelled, message: "cancelled"))?.resume()
                } else if !post(.add(transfer)) {
                    // Admitted just before a shutdown whose driver has ended since: refused here.
                    transfer.fail(TransferError(.cancelled, message: "the client is shut down"))?.resume()
                }
            }
        } onCancel: {
            post(.cancel(id))
        }
        // The last reference, released on this side (`Transfer.Completion`).
        withExtendedLifetime(transfer) {}
        return try result.get()
    }

    /// Fails new requests, lets running transfers end, and stops the driver thread.
    public func shutdown() async {
        let driving = inbox.withLock { state in
            state.shutdown = true
            return state.driving
        }
        guard driving else {
            // No request was ever made, and none can start now: the handle closes here, once.
            let first = stopped.withLock { waiters in
                defer { waiters = nil }
                return waiters != nil
            }
            if first {
                multi.close()
                handles.close()
            }
            return
        }
        await withCheckedContinuation { continuation in
            // Woken under the lock the driver takes before it closes the multi handle.
            let alreadyStopped = stopped.withLock { waiters -> Bool in
                guard waiters != nil else { return true }
                waiters?.append(continuation)
                multi.wakeup()
                return false
            }
            if alreadyStopped { continuation.resume() }
        }
    }

    /// Whether the driver thread was started: by the first request, never by `init`.
    package var isDriving: Bool { inbox.withLock { $0.driving } }

    /// Easy handles kept for the next transfers (for tests).
    package var idleHandles: Int { handles.idleCount }

    /// False when the driver thread has ended, so nothing would read the command. The
    /// wake-up happens under the lock the driver takes to end, before it closes the handle.
    @discardableResult
    private func post(_ command: Command) -> Bool {
        inbox.withLock { state in
            guard !state.stopped else { return false }
            // Commands already waiting were posted with a wake-up the driver has not yet
            // followed by taking them: it takes this one with them. This relies on only
            // `curl_multi_poll` consuming wake-ups, as in libcurl 7.88 (Debian 12); a
            // libcurl whose `curl_multi_perform` also drains them would need a wake-up
            // per command again.
            if state.commands.isEmpty { multi.wakeup() }
            state.commands.append(command)
            return true
        }
    }

    /// The driver thread: adds new transfers, runs curl, completes finished ones.
    private func drive() {
        var active: [UnsafeMutableRawPointer: Transfer] = [:]
        // Trades buffers with the inbox, so a turn allocates nothing (see `SerialThread`).
        var commands: [Command] = []
        while true {
            let shutdown = inbox.withLock { state in
                swap(&commands, &state.commands)
                return state.shutdown
            }
            for command in commands {
                switch command {
                case .add(let transfer):
                    if multi.add(transfer.easy) {
                        active[transfer.easy] = transfer
                    } else {
                        transfer.complete(code: 2)?.resume()
                    }
                case .cancel(let id):
                    if let easy = active.first(where: { $0.value.id == id })?.key {
                        multi.remove(easy)
                        let completion = active.removeValue(forKey: easy)?.fail(TransferError(.cancelled, message: "cancelled"))
                        completion?.resume()
                    }
                }
            }
            commands.removeAll(keepingCapacity: true)
            // Ends only if no command came meanwhile (a request admitted before the shutdown).
            if shutdown && active.isEmpty {
                let ends = inbox.withLock { state in
                    guard state.commands.isEmpty else { return false }
                    state.stopped = true
                    return true
                }
                if ends { break }
                continue
            }
            multi.perform()
            while let (easy, code) = multi.nextDone() {
                multi.remove(easy)
                // Two statements: the driver's reference ends before the caller resumes.
                let completion = active.removeValue(forKey: easy)?.complete(code: code)
                completion?.resume()
            }
            multi.poll(milliseconds: 1000)
        }
        // Nobody wakes the multi handle after this: `shutdown` does so holding this lock.
        let waiters = stopped.withLock { waiters in
            defer { waiters = nil }
            return waiters ?? []
        }
        multi.close()
        handles.close()
        for waiter in waiters { waiter.resume() }
    }
}

/// The `CURLM` handle.
///
/// `@unchecked Sendable`: every call except `wakeup` happens on the client's driver
/// thread; `curl_multi_wakeup` is documented as callable from any thread.
private final class MultiHandle: @unchecked Sendable {
    private let handle: UnsafeMutableRawPointer

    init(configuration: Client.Configuration) {
        handle = curl_multi_init()!
        _ = herald_curl_multi_setopt_long(handle, CURLMOPT_MAXCONNECTS, configuration.maxCachedConnections)
        _ = herald_curl_multi_setopt_long(handle, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
    }

    func add(_ easy: UnsafeMutableRawPointer) -> Bool { curl_multi_add_handle(handle, easy) == CURLM_OK }
    func remove(_ easy: UnsafeMutableRawPointer) { curl_multi_remove_handle(handle, easy) }
    func wakeup() { curl_multi_wakeup(handle) }

    func perform() {
        var running: Int32 = 0
        _ = curl_multi_perform(handle, &running)
    }

    func poll(milliseconds: Int32) {
        _ = curl_multi_poll(handle, nil, 0, milliseconds, nil)
    }

    /// The next finished transfer and its result code.
    func nextDone() -> (UnsafeMutableRawPointer, Int)? {
        var left: Int32 = 0
        while let message = curl_multi_info_read(handle, &left) {
            if message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle {
                return (easy, Int(message.pointee.data.result.rawValue))
            }
        }
        return nil
    }

    func close() {
        curl_multi_cleanup(handle)
    }
}
