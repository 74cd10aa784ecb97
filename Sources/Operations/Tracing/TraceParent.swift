public import Tracing

/// A span's identity as W3C Trace Context carries it between processes: the
/// `traceparent` header (`00-<trace id>-<span id>-<flags>`) and, passed along unread,
/// `tracestate`. It travels in HTTP headers into the API, in AMQP message headers from
/// the producer to the worker, and in the webhook request to the receiver.
public struct TraceParent: Sendable, Hashable {
    /// 16 bytes, as two halves; never all zero.
    public var traceID: (high: UInt64, low: UInt64) {
        get { (traceHigh, traceLow) }
        set { (traceHigh, traceLow) = newValue }
    }
    private var traceHigh: UInt64
    private var traceLow: UInt64
    /// 8 bytes; never zero.
    public var spanID: UInt64
    /// The `sampled` flag: whether the span is recorded (and its children should be).
    public var sampled: Bool
    /// The vendor's `tracestate`, carried along unchanged (at most 512 bytes, as the
    /// specification lets a carrier cut it; printable ASCII only, so it can never break
    /// the webhook request's headers).
    public var state: String?

    public static let header = "traceparent"
    public static let stateHeader = "tracestate"

    public init(traceID: (high: UInt64, low: UInt64), spanID: UInt64, sampled: Bool, state: String? = nil) {
        traceHigh = traceID.high
        traceLow = traceID.low
        self.spanID = spanID
        self.sampled = sampled
        self.state = state
    }

    /// Reads a `traceparent` header value; nil for anything the specification says to
    /// ignore (wrong lengths, upper-case or non-hex digits, version ff, zero ids). A
    /// later version is read by its version-00 prefix.
    public init?(header value: String, state: String? = nil) {
        let bytes = Array(value.utf8)
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-"),
            let version = Self.hex(bytes[0..<2]), version != 0xff
        else { return nil }
        // Version 00 is exactly 55 characters; a later one may add fields after a dash.
        if version == 0 ? bytes.count != 55 : (bytes.count > 55 && bytes[55] != UInt8(ascii: "-")) { return nil }
        guard let high = Self.hex(bytes[3..<19]), let low = Self.hex(bytes[19..<35]), high != 0 || low != 0,
            let span = Self.hex(bytes[36..<52]), span != 0, let flags = Self.hex(bytes[53..<55])
        else { return nil }
        self.init(traceID: (high, low), spanID: span, sampled: flags & 1 == 1, state: state.flatMap { $0.utf8.count <= 512 && $0.utf8.allSatisfy { (0x20...0x7e).contains($0) } ? $0 : nil })
    }

    /// The `traceparent` header value (version 00).
    public var headerValue: String {
        "00-\(Self.hex(traceHigh))\(Self.hex(traceLow))-\(Self.hex(spanID))-\(sampled ? "01" : "00")"
    }

    /// The trace id as 32 lower-case hex digits (what OTLP's JSON encoding carries).
    public var traceIDHex: String { Self.hex(traceHigh) + Self.hex(traceLow) }

    /// An id as 16 lower-case hex digits.
    public static func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    /// Lower-case hex digits only (the specification forbids upper case).
    private static func hex(_ digits: ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        for digit in digits {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt64(digit - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt64(digit - UInt8(ascii: "a") + 10)
            default: return nil
            }
        }
        return value
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.traceHigh == rhs.traceHigh && lhs.traceLow == rhs.traceLow && lhs.spanID == rhs.spanID && lhs.sampled == rhs.sampled
            && lhs.state == rhs.state
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(traceHigh)
        hasher.combine(traceLow)
        hasher.combine(spanID)
    }
}

/// Where a span's identity is kept in an `InstrumentationContext`.
enum TraceParentKey: InstrumentationContextKey {
    typealias Value = TraceParent
    static var nameOverride: String? { "traceparent" }
}

extension InstrumentationContext {
    /// The identity of the span this context belongs to (or of the remote parent it was
    /// extracted from); nil outside any trace.
    public var traceParent: TraceParent? {
        get { self[TraceParentKey.self] }
        set { self[TraceParentKey.self] = newValue }
    }
}
