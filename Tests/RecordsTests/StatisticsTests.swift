import Foundation
import Records
import Testing

@Suite("Hourly figures")
struct StatisticsTests {
    @Test func aDurationFallsInTheBucketBelowItsUpperBound() {
        #expect(LatencyHistogram.bucket(milliseconds: 0) == 0)
        #expect(LatencyHistogram.bucket(milliseconds: 4) == 0)
        #expect(LatencyHistogram.bucket(milliseconds: 5) == 1)
        #expect(LatencyHistogram.bucket(milliseconds: 29_999) == LatencyHistogram.bounds.count - 1)
        #expect(LatencyHistogram.bucket(milliseconds: 30_000) == LatencyHistogram.bounds.count)
        #expect(LatencyHistogram.bucket(milliseconds: .max) == LatencyHistogram.bounds.count)
    }

    @Test func percentilesInterpolateWithinTheirBucket() throws {
        var histogram = LatencyHistogram()
        #expect(histogram.percentile(0.5) == nil, "no attempts, no figure")
        // 100 attempts between 10 and 25 ms: the median is half-way through that bucket.
        for _ in 0..<100 { histogram.add(milliseconds: 12) }
        #expect(try #require(histogram.percentile(0.5)) == 17.5)
        #expect(try #require(histogram.percentile(1)) == 25)
        // 100 more at 2 s: the median is now the top of the first bucket, p95 in the second.
        for _ in 0..<100 { histogram.add(milliseconds: 2000) }
        #expect(try #require(histogram.percentile(0.5)) == 25)
        let p95 = try #require(histogram.percentile(0.95))
        #expect(p95 > 1000 && p95 <= 2500)
    }

    @Test func theOpenBucketAnswersItsLowerBound() throws {
        var histogram = LatencyHistogram()
        histogram.add(milliseconds: 90_000)
        #expect(try #require(histogram.percentile(0.99)) == Double(LatencyHistogram.bounds.last!))
    }

    @Test func histogramsAddAndStoredCountsOfAnotherLengthFit() {
        var a = LatencyHistogram()
        a.add(milliseconds: 1)
        var b = LatencyHistogram()
        b.add(milliseconds: 1)
        b.add(milliseconds: 700)
        a.add(b)
        #expect(a.total == 3 && a.counts[0] == 2)
        #expect(LatencyHistogram(counts: [1, 2]).counts.count == LatencyHistogram.bounds.count + 1)
        #expect(LatencyHistogram(counts: Array(repeating: 1, count: 40)).total == LatencyHistogram.bounds.count + 1)
    }

    @Test func anHourCountsByWhatTheReceiverDid() {
        var hour = EndpointHour(hour: EndpointHour.start(of: Date(timeIntervalSince1970: 7_200 + 1_799)))
        #expect(hour.hour == Date(timeIntervalSince1970: 7_200))
        hour.add(statusCode: 204, milliseconds: 3)
        hour.add(statusCode: 299, milliseconds: 3)
        hour.add(statusCode: 301, milliseconds: 3)
        hour.add(statusCode: 500, milliseconds: 3)
        hour.add(statusCode: nil, milliseconds: 30_000)
        #expect((hour.succeeded, hour.rejected, hour.unanswered, hour.attempts) == (2, 2, 1, 5))
        #expect(EndpointSummary(attempts: 4, succeeded: 3).successRate == 0.75)
        #expect(EndpointSummary().successRate == nil)
        #expect(TenantActivity(attempts: 10, failed: 1).failureRate == 0.1)
    }
}
