import HeraldSupport
import Hummingbird
import Policy
import Synchronization

/// One token bucket per caller (a credential, a tenant), shared by the API's requests.
/// Buckets that have filled up again are forgotten, so idle callers cost no memory.
final class RateLimiter: Sendable {
    private let rate: Double
    private let buckets = Mutex<[String: TokenBucket]>([:])
    private let clock = ContinuousClock()
    private let start = ContinuousClock.now

    /// `perSecond` 0 admits everything; the burst is twice the rate.
    init(perSecond: Int) {
        rate = Double(perSecond)
    }

    /// Admits one call of `caller`, or throws 429 with `Retry-After`.
    func admit(_ caller: String, what: String) throws(Problem) {
        guard rate > 0 else { return }
        let elapsed = clock.now - start
        let now = elapsed.seconds
        let wait: Double? = buckets.withLock { buckets in
            if buckets.count > 10_000 { buckets = buckets.filter { !$0.value.isFull(now: now) } }
            var bucket = buckets[caller] ?? TokenBucket(rate: rate, burst: rate * 2, now: now)
            let wait = bucket.take(now: now)
            buckets[caller] = bucket
            return wait
        }
        guard let wait else { return }
        let seconds = max(1, Int(wait.rounded(.up)))
        var problem = Problem(.tooManyRequests, "more than \(Int(rate)) \(what) a second; retry in \(seconds) s")
        problem.headers[.retryAfter] = String(seconds)
        throw problem
    }
}
