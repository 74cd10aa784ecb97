@testable import Dashboard
import Foundation
import Records
import Testing

@Suite("Charts drawn by the server")
struct ChartTests {
    let now = Date(timeIntervalSince1970: 1_778_578_200 + 1_234)  // 2026-05-12T09:50:34Z

    func hour(_ back: Int, succeeded: Int = 0, rejected: Int = 0, unanswered: Int = 0, milliseconds: Int = 20) -> EndpointHour {
        var hour = EndpointHour(hour: EndpointHour.start(of: now).addingTimeInterval(-3600 * Double(back)))
        for _ in 0..<succeeded { hour.add(statusCode: 200, milliseconds: milliseconds) }
        for _ in 0..<rejected { hour.add(statusCode: 500, milliseconds: milliseconds) }
        for _ in 0..<unanswered { hour.add(statusCode: nil, milliseconds: milliseconds) }
        return hour
    }

    @Test(arguments: Chart.Period.allCases)
    func aSlotPerHourEndingWithTheCurrentOne(_ period: Chart.Period) {
        let chart = Chart(hours: [hour(0, succeeded: 1), hour(period.hours, succeeded: 9)], period: period, now: now)
        #expect(chart.slots.count == period.hours)
        #expect(chart.slots.last?.hour == EndpointHour.start(of: now))
        #expect(chart.slots.first?.hour == Chart.since(period, now: now))
        #expect(chart.totals.attempts == 1, "an hour before the period is not shown")
    }

    @Test func barsStackByResultAndSayTheirCounts() {
        let chart = Chart(hours: [hour(1, succeeded: 6, rejected: 3, unanswered: 1), hour(3, succeeded: 2)], period: .day, now: now)
        let svg = chart.attemptsSVG
        #expect(svg.components(separatedBy: "<g class=\"bar\">").count - 1 == 2, "one bar per hour with attempts")
        #expect(svg.components(separatedBy: "<rect").count - 1 == 4, "three layers and one")
        #expect(svg.contains("08:00: 6 delivered, 3 rejected, 1 unanswered"))
        #expect(svg.contains(">10</text>"), "the top of the scale is the fullest hour")
        #expect(chart.totals == (12, 8, 3, 1))
    }

    @Test func theTallestBarFillsThePlotAndOthersScale() throws {
        let chart = Chart(hours: [hour(0, succeeded: 10), hour(1, succeeded: 5)], period: .day, now: now)
        let heights = chart.attemptsSVG.matches(of: /height="([0-9.]+)" fill/).compactMap { Double($0.output.1) }
        #expect(heights.count == 2)
        let (a, b) = (try #require(heights.max()), try #require(heights.min()))
        #expect(abs(a - 2 * b) < 0.2)
    }

    @Test func latencyLinesOnlyWhereThereWereAttempts() {
        let chart = Chart(hours: [hour(2, succeeded: 20, milliseconds: 40), hour(5, succeeded: 20, milliseconds: 400)], period: .day, now: now)
        let svg = chart.latencySVG
        #expect(svg.contains("class=\"p50\"") && svg.contains("class=\"p95\""))
        #expect(svg.components(separatedBy: "<circle").count - 1 == 4, "two hours, two lines")
        #expect(svg.contains(">500 ms</text>"), "the scale's top rounds the highest p95 up")
        let empty = Chart(hours: [], period: .week, now: now)
        #expect(!empty.latencySVG.contains("<polyline") && !empty.attemptsSVG.contains("<rect"))
        #expect(empty.percentile(0.5) == nil)
    }

    @Test func scalesEndOnRoundNumbers() {
        #expect(Chart.niceCeiling(0) == 1)
        #expect(Chart.niceCeiling(7) == 10)
        #expect(Chart.niceCeiling(10) == 10)
        #expect(Chart.niceCeiling(11) == 20)
        #expect(Chart.niceCeiling(430) == 500)
        #expect(Chart.niceCeiling(5001) == 10_000)
        #expect(Chart.milliseconds(2500) == "2.5 s" && Chart.milliseconds(17.4) == "17 ms")
        #expect(Pages.percent(0.5) == "50 %" && Pages.percent(0.995) == "99.5 %" && Pages.percent(1) == "100 %")
        #expect(Pages.span(.seconds(60)) == "1m" && Pages.span(.seconds(6_360)) == "1h 46m" && Pages.span(.seconds(2 * 86_400 + 3600)) == "2d 1h")
    }
}
