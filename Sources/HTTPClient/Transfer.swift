internal import CCurl
import Foundation
import Glibc
import HeraldSupport

/// One request in flight: its easy handle, the request data libcurl reads and the
/// response it writes.
///
/// `@unchecked Sendable`: built by the caller, then handed to the driver thread, which
/// alone touches it until it is finished (libcurl's callbacks run inside
/// `curl_multi_perform`); the caller keeps a reference and releases the last one.
final class Transfer: @unchecked Sendable {
    let id: UInt64
    let easy: UnsafeMutableRawPointer
    /// The handle with its scratch memory, which goes back to `handles` when the
    /// transfer is over.
    private var handle: EasyHandles.Handle
    private let handles: EasyHandles
    /// Set by the caller before the transfer is posted to the driver thread.
    private var continuation: Continuation<Result<Response, TransferError>, Never>?
    private let maxResponseBytes: Int
    private let overflow: Request.Overflow
    private let addressPolicy: (@Sendable (SocketAddress) -> Bool)?

    private var status = 0
    private var headers: [(name: String, value: String)] = []
    private var body: [UInt8] = []
    private var truncated = false
    private var abortedForSize = false
    private var blockedAddress: SocketAddress?
    private var finished = false

    init(id: UInt64, request: Request, configuration: Client.Configuration, handles: EasyHandles) throws(TransferError) {
        guard let handle = handles.take() else {
            throw TransferError(.other, message: "curl_easy_init failed")
        }
        self.id = id
        self.easy = handle.pointer
        self.handle = handle
        self.handles = handles
        self.maxResponseBytes = max(0, request.maxResponseBytes)
        self.overflow = request.overflow
        self.addressPolicy = configuration.addressPolicy
        try configure(request, configuration: configuration)
    }

    /// Runs once the driver removed the handle from the multi handle (or never added it).
    deinit {
        handles.give(handle)
    }

    private func configure(_ request: Request, configuration: Client.Configuration) throws(TransferError) {
        for (name, value) in request.headers {
            guard HTTPToken.isToken(name), !Self.hasControlCharacters(value) else {
                throw TransferError(.invalidRequest, message: "header '\(name.prefix(64))' has a malformed name or value")
            }
        }
        guard !Self.hasControlCharacters(request.url) else {
            throw TransferError(.invalidRequest, message: "the URL contains control characters")
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        var ok = true
        func set(_ option: CURLoption, _ value: Int) { ok = ok && herald_curl_easy_setopt_long(easy, option, value) == CURLE_OK }
        func set(_ option: CURLoption, _ value: String) { ok = ok && herald_curl_easy_setopt_string(easy, option, value) == CURLE_OK }
        set(CURLOPT_URL, request.url)
        set(CURLOPT_NOSIGNAL, 1)
        set(CURLOPT_FOLLOWLOCATION, 0)
        set(CURLOPT_PROTOCOLS_STR, "http,https")
        set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        // An empty proxy overrides http_proxy / https_proxy / all_proxy from the environment.
        set(CURLOPT_PROXY, configuration.proxy ?? "")
        set(CURLOPT_TCP_KEEPALIVE, 1)
        set(CURLOPT_TIMEOUT_MS, Int(request.timeout.milliseconds))
        set(CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout.milliseconds))
        if request.method == "POST" {
            set(CURLOPT_POST, 1)
        } else {
            set(CURLOPT_CUSTOMREQUEST, request.method)
        }
        let held = handle.hold(body: request.bodyBytes, headers: request.headers)
        if request.method != "GET" || !request.bodyBytes.isEmpty {
            // The size first: libcurl then reads that many bytes, binary data included.
            ok = ok && herald_curl_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.bodyBytes.count)) == CURLE_OK
            ok = ok && herald_curl_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, held.body) == CURLE_OK
        }
        ok = ok && herald_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, held.headers) == CURLE_OK
        ok = ok && herald_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, handle.errorBuffer) == CURLE_OK
        ok = ok && herald_curl_easy_setopt_write(easy, writeCallback) == CURLE_OK
        ok = ok && herald_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me) == CURLE_OK
        ok = ok && herald_curl_easy_setopt_header(easy, headerCallback) == CURLE_OK
        ok = ok && herald_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me) == CURLE_OK
        ok = ok && herald_curl_easy_setopt_opensocket(easy, openSocketCallback) == CURLE_OK
        ok = ok && herald_curl_easy_setopt_pointer(easy, CURLOPT_OPENSOCKETDATA, me) == CURLE_OK
        guard ok else {
            throw TransferError(.invalidRequest, message: "libcurl refused an option for this request")
        }
    }

    // MARK: Callbacks (driver thread)

    fileprivate func receive(_ data: UnsafeRawBufferPointer) -> Int {
        let room = maxResponseBytes - body.count
        if data.count <= room {
            body.append(contentsOf: data)
            return data.count
        }
        if room > 0 { body.append(contentsOf: data.prefix(room)) }
        truncated = true
        if overflow == .abort {
            abortedForSize = true
            return 0
        }
        return data.count
    }

    /// A header line from libcurl, read as bytes: a `String` is made only of a header's
    /// name and value (this ran for every header of every response).
    fileprivate func receiveHeader(_ data: UnsafeRawBufferPointer) {
        var start = 0
        var end = data.count
        while start < end, Self.isBlank(data[start]) { start += 1 }
        while end > start, Self.isBlank(data[end - 1]) { end -= 1 }
        let line = UnsafeRawBufferPointer(rebasing: data[start..<end])
        if line.starts(with: "HTTP/".utf8) {
            // A new status line (after 100 Continue, or the final response): start over,
            // with room for a response's usual few headers.
            headers.removeAll(keepingCapacity: true)
            headers.reserveCapacity(8)
            status = Self.statusCode(line)
        } else if let colon = line.firstIndex(of: UInt8(ascii: ":")), headers.count < 100 {
            var valueStart = colon + 1
            while valueStart < line.count, Self.isBlank(line[valueStart]) { valueStart += 1 }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: line[..<colon]), as: UTF8.self)
            let value = String(decoding: UnsafeRawBufferPointer(rebasing: line[valueStart...]), as: UTF8.self)
            headers.append((name, value.utf8.count > 8192 ? String(value.prefix(8192)) : value))
        }
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
    }

    /// The code of a status line (`HTTP/1.1 204 No Content`): its second word, 0 if that
    /// is not a number.
    static func statusCode(_ line: UnsafeRawBufferPointer) -> Int {
        var at = 0
        while at < line.count, line[at] != UInt8(ascii: " ") { at += 1 }
        while at < line.count, line[at] == UInt8(ascii: " ") { at += 1 }
        let start = at
        while at < line.count, line[at] != UInt8(ascii: " ") { at += 1 }
        return Int(String(decoding: UnsafeRawBufferPointer(rebasing: line[start..<at]), as: UTF8.self)) ?? 0
    }

    fileprivate func openSocket(_ address: UnsafePointer<curl_sockaddr>) -> curl_socket_t {
        let family = address.pointee.family
        if let addressPolicy, let socketAddress = Self.socketAddress(herald_curl_sockaddr(address)) {
            guard addressPolicy(socketAddress) else {
                blockedAddress = socketAddress
                return CURL_SOCKET_BAD
            }
        }
        return socket(family, address.pointee.socktype, address.pointee.protocol)
    }

    // MARK: Completion

    /// Who waits for this transfer; called once, before it is posted to the driver.
    func start(_ continuation: Continuation<Result<Response, TransferError>, Never>) {
        self.continuation = continuation
    }

    /// A finished transfer's answer. The driver lets go of the transfer before it resumes
    /// the caller, so the caller releases the last reference: the handle and the request's
    /// buffers are freed on the thread that allocated them, where the allocator's
    /// per-thread cache takes them back for the next request.
    struct Completion {
        let continuation: Continuation<Result<Response, TransferError>, Never>
        let result: Result<Response, TransferError>

        func resume() { continuation.resume(returning: result) }
    }

    func complete(code: Int) -> Completion? {
        guard !finished else { return nil }
        // Aborted at the body cap after the status line: the answer is known, keep it.
        if code == 0 || (abortedForSize && status > 0) {
            var totalTime = 0.0
            _ = herald_curl_easy_getinfo_double(easy, CURLINFO_TOTAL_TIME, &totalTime)
            var ip: UnsafeMutablePointer<CChar>?
            _ = herald_curl_easy_getinfo_string(easy, CURLINFO_PRIMARY_IP, &ip)
            var code = 0
            _ = herald_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code)
            let response = Response(
                status: code != 0 ? code : status, headers: headers, body: body, bodyTruncated: truncated,
                duration: .microseconds(Int64(totalTime * 1_000_000)), remoteAddress: ip.map { String(cString: $0) })
            return finish(.success(response))
        }
        let message = handle.errorBuffer[0] != 0 ? String(cString: handle.errorBuffer) : String(cString: curl_easy_strerror(CURLcode(UInt32(code))))
        if let blockedAddress {
            return finish(.failure(TransferError(.blocked, curlCode: code, message: "connecting to \(blockedAddress) is not allowed")))
        } else if abortedForSize {
            return finish(.failure(TransferError(.tooLarge, curlCode: code, message: "the response body exceeded \(maxResponseBytes) bytes")))
        } else {
            return finish(.failure(TransferError(TransferError.Kind(curlCode: code), curlCode: code, message: message)))
        }
    }

    func fail(_ error: TransferError) -> Completion? {
        finish(.failure(error))
    }

    private func finish(_ result: Result<Response, TransferError>) -> Completion? {
        guard !finished, let continuation else { return nil }
        finished = true
        return Completion(continuation: continuation, result: result)
    }

    // MARK: Helpers

    /// CR, LF or NUL, which would split a header line or truncate a C string. Bytes, not
    /// Characters: "\r\n" is a single Character. (In UTF-8 these bytes are never part of
    /// another character.)
    static func hasControlCharacters(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { hasControlCharacters(UnsafeRawBufferPointer($0)) }
    }

    /// Eight bytes at a time: every header of every request is checked, about 560 bytes
    /// a delivery, and a byte at a time it took about eight instructions each.
    static func hasControlCharacters(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        // Non-zero exactly when one of the word's bytes is zero.
        func hasZeroByte(_ word: UInt64) -> Bool { (word &- ones) & ~word & highs != 0 }
        var at = 0
        while at + 8 <= bytes.count {
            let word = bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)
            if hasZeroByte(word) || hasZeroByte(word ^ (ones &* 0x0A)) || hasZeroByte(word ^ (ones &* 0x0D)) { return true }
            at += 8
        }
        while at < bytes.count {
            if bytes[at] == UInt8(ascii: "\r") || bytes[at] == UInt8(ascii: "\n") || bytes[at] == 0 { return true }
            at += 1
        }
        return false
    }

    private static func socketAddress(_ address: UnsafePointer<sockaddr>) -> SocketAddress? {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                let raw = withUnsafeBytes(of: v4.pointee.sin_addr) { Array($0) }
                return SocketAddress(family: .ipv4, bytes: raw, port: Int(UInt16(bigEndian: v4.pointee.sin_port)))
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                let raw = withUnsafeBytes(of: v6.pointee.sin6_addr) { Array($0) }
                return SocketAddress(family: .ipv6, bytes: raw, port: Int(UInt16(bigEndian: v6.pointee.sin6_port)))
            }
        default:
            return nil
        }
    }
}

private func transfer(_ pointer: UnsafeMutableRawPointer?) -> Transfer {
    Unmanaged<Transfer>.fromOpaque(pointer!).takeUnretainedValue()
}

private let writeCallback: herald_curl_data_callback = { data, size, count, user in
    guard let data else { return 0 }
    return transfer(user).receive(UnsafeRawBufferPointer(start: data, count: size * count))
}

private let headerCallback: herald_curl_data_callback = { data, size, count, user in
    guard let data else { return 0 }
    transfer(user).receiveHeader(UnsafeRawBufferPointer(start: data, count: size * count))
    return size * count
}

private let openSocketCallback: herald_curl_opensocket_callback = { user, _, address in
    guard let address else { return CURL_SOCKET_BAD }
    return transfer(user).openSocket(address)
}
