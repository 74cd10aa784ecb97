public import Foundation
public import HTTPClient
import HeraldSupport

/// What one attempt's result means for the delivery, following the reference retry table:
/// 2xx delivered; 408, 429, 5xx, timeouts and connection errors transient; other 4xx
/// permanent; 410 permanent and the endpoint asked to be disabled; redirects are failures.
public struct Outcome: Sendable, Equatable {
    public enum Verdict: String, Sendable {
        case delivered
        case transient
        case permanent
        /// Permanent, and the receiver asked to stop (410 Gone).
        case gone
    }

    /// The delivery log's class of a failed attempt.
    public enum ErrorClass: String, Sendable, CaseIterable {
        /// No complete answer within the HTTP timeout.
        case timeout
        case connect, dns, tls
        /// An answer that is not 2xx (or a request that could not be made).
        case http
        /// The connect-time address policy refused the address.
        case blocked
        /// The connection broke, or anything else below HTTP.
        case network
    }

    public var verdict: Verdict
    public var statusCode: Int?
    public var errorClass: ErrorClass?
    public var errorMessage: String?
    /// From `Retry-After` on 429 and 503.
    public var retryAfter: Duration?

    public init(verdict: Verdict, statusCode: Int? = nil, errorClass: ErrorClass? = nil, errorMessage: String? = nil, retryAfter: Duration? = nil) {
        self.verdict = verdict
        self.statusCode = statusCode
        self.errorClass = errorClass
        self.errorMessage = errorMessage
        self.retryAfter = retryAfter
    }

    /// The status or the error class, for operators: never the response's body.
    public var summary: String {
        statusCode.map { "HTTP \($0)" } ?? errorClass.map { "\($0.rawValue) error" } ?? verdict.rawValue
    }

    /// The outcome while the endpoint's secret is changing (a rotation pending or just
    /// ended): a 401 or 403 is the receiver switching secrets, so it is retried, not failed.
    public func settlingRotation() -> Outcome {
        guard verdict == .permanent, statusCode == 401 || statusCode == 403 else { return self }
        var outcome = self
        outcome.verdict = .transient
        outcome.errorMessage = (errorMessage ?? "") + " during a secret rotation: retried"
        return outcome
    }

    /// Classifies an HTTP response.
    public static func of(status: Int, retryAfter header: String?, now: Date) -> Outcome {
        switch status {
        case 200..<300:
            return Outcome(verdict: .delivered, statusCode: status)
        case 410:
            return Outcome(verdict: .gone, statusCode: status, errorClass: .http, errorMessage: "410 Gone: the receiver asked to stop")
        case 408, 429, 500..<600:
            let wait = (status == 429 || status == 503) ? header.flatMap { parseRetryAfter($0, now: now) } : nil
            return Outcome(verdict: .transient, statusCode: status, errorClass: .http, errorMessage: "HTTP \(status)", retryAfter: wait)
        case 300..<400:
            return Outcome(verdict: .permanent, statusCode: status, errorClass: .http, errorMessage: "HTTP \(status): redirects are not followed")
        default:
            return Outcome(verdict: .permanent, statusCode: status, errorClass: .http, errorMessage: "HTTP \(status)")
        }
    }

    /// Classifies a transfer that got no response. A blocked address is permanent: the
    /// URL points somewhere Herald must not go; anything else may heal.
    public static func of(_ error: TransferError) -> Outcome {
        switch error.kind {
        case .timeout: return Outcome(verdict: .transient, errorClass: .timeout, errorMessage: error.message)
        case .dns: return Outcome(verdict: .transient, errorClass: .dns, errorMessage: error.message)
        case .connect: return Outcome(verdict: .transient, errorClass: .connect, errorMessage: error.message)
        case .tls: return Outcome(verdict: .transient, errorClass: .tls, errorMessage: error.message)
        case .blocked: return Outcome(verdict: .permanent, errorClass: .blocked, errorMessage: error.message)
        case .invalidRequest: return Outcome(verdict: .permanent, errorClass: .http, errorMessage: error.message)
        case .network, .tooLarge, .cancelled, .other:
            return Outcome(verdict: .transient, errorClass: .network, errorMessage: error.message)
        }
    }

    /// Longest wait a `Retry-After` can ask for; the ladder's last rung caps it further.
    /// A receiver's header is input: no value of it may overflow a duration.
    public static let longestRetryAfter = Duration.seconds(366 * 86_400)

    /// `Retry-After` as delay-seconds or an HTTP-date, at most `longestRetryAfter`; nil
    /// when unparseable or in the past.
    public static func parseRetryAfter(_ value: String, now: Date) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        let longest = Double(longestRetryAfter.components.seconds)
        if !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            // Digits only (RFC 9110's delay-seconds); any count of them.
            return .seconds(Int64(trimmed).map { min($0, Int64(longest)) } ?? Int64(longest))
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        let delta = date.timeIntervalSince(now)
        guard delta.isFinite, delta > 0 else { return nil }
        return .milliseconds(Int64(min(delta, longest) * 1000))
    }
}

/// When consecutive failures disable an endpoint: `threshold` failures spanning at
/// least `window` (0 gives the pure count). A low-volume endpoint reaches it the way
/// the reference does; a one-second blip on a busy endpoint does not.
public struct DisablePolicy: Sendable, Equatable {
    public var threshold: Int
    public var window: Duration

    public init(threshold: Int = 5, window: Duration = .seconds(3600)) {
        self.threshold = threshold
        self.window = window
    }

    public func shouldDisable(consecutiveFailures: Int, firstFailureAt: Date, now: Date) -> Bool {
        guard threshold > 0, consecutiveFailures >= threshold else { return false }
        let span = now.timeIntervalSince(firstFailureAt)
        let windowSeconds = window.seconds
        return span >= windowSeconds
    }
}
