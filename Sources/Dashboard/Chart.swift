import Foundation
import HeraldSupport
import Records

/// An endpoint's hours drawn as two SVG charts by the server: attempts per hour stacked by
/// what the receiver did, and the attempt latency's p50 and p95 per hour. No script and no
/// chart library; every text in it is generated here (numbers and times), never stored input.
struct Chart: Sendable {
    enum Period: String, CaseIterable, Sendable {
        case day = "24h"
        case week = "7d"

        var hours: Int { self == .day ? 24 : 168 }
        /// Hours between two labels on the time axis.
        var labelEvery: Int { self == .day ? 6 : 24 }
    }

    let period: Period
    /// One slot per hour of the period, oldest first, the current hour last.
    let slots: [EndpointHour]

    init(hours: [EndpointHour], period: Period, now: Date) {
        self.period = period
        let last = EndpointHour.start(of: now)
        let byHour = Dictionary(hours.map { ($0.hour, $0) }, uniquingKeysWith: { a, _ in a })
        slots = (0..<period.hours).reversed().map { back in
            let hour = last.addingTimeInterval(-3600 * Double(back))
            return byHour[hour] ?? EndpointHour(hour: hour)
        }
    }

    /// The first hour a chart of `period` shows, for the query.
    static func since(_ period: Period, now: Date) -> Date {
        EndpointHour.start(of: now).addingTimeInterval(-3600 * Double(period.hours - 1))
    }

    var totals: (attempts: Int, succeeded: Int, rejected: Int, unanswered: Int) {
        slots.reduce((0, 0, 0, 0)) { ($0.0 + $1.attempts, $0.1 + $1.succeeded, $0.2 + $1.rejected, $0.3 + $1.unanswered) }
    }

    /// The whole period's latency percentile, from the hours' buckets added up.
    func percentile(_ quantile: Double) -> Double? {
        var all = LatencyHistogram()
        for slot in slots { all.add(slot.latency) }
        return all.percentile(quantile)
    }

    // MARK: Drawing

    static let width = 720.0
    static let height = 170.0
    static let left = 48.0
    static let bottom = 22.0
    static let top = 8.0
    static let colors = (succeeded: "#2f9e55", rejected: "#d64545", unanswered: "#e0a526", p50: "#3756c7", p95: "#9aa5c4")

    private var plotWidth: Double { Self.width - Self.left - 8 }
    private var plotHeight: Double { Self.height - Self.bottom - Self.top }
    private var slotWidth: Double { plotWidth / Double(slots.count) }

    /// Attempts per hour, stacked: 2xx at the bottom, other answers, then no answer.
    var attemptsSVG: String {
        let maximum = Self.niceCeiling(Double(slots.map(\.attempts).max() ?? 0))
        var parts: [String] = []
        for (index, slot) in slots.enumerated() where slot.attempts > 0 {
            let x = Self.left + Double(index) * slotWidth
            var y = Self.top + plotHeight
            let layers = [(slot.succeeded, Self.colors.succeeded), (slot.rejected, Self.colors.rejected), (slot.unanswered, Self.colors.unanswered)]
            var rects = ""
            for (count, color) in layers where count > 0 {
                let h = plotHeight * Double(count) / maximum
                y -= h
                rects += #"<rect x="\#(Self.f(x + 0.5))" y="\#(Self.f(y))" width="\#(Self.f(max(slotWidth - 1, 1)))" height="\#(Self.f(h))" fill="\#(color)"/>"#
            }
            let title = "\(Self.hourLabel(slot.hour)): \(slot.succeeded) delivered, \(slot.rejected) rejected, \(slot.unanswered) unanswered"
            parts.append(#"<g class="bar"><title>\#(title)</title>\#(rects)</g>"#)
        }
        return svg(label: "Attempts per hour by result", yLabel: Self.count(maximum), body: parts.joined())
    }

    /// p50 and p95 of the attempts' latency per hour, as two lines.
    var latencySVG: String {
        let p50 = slots.map { $0.latency.percentile(0.5) }
        let p95 = slots.map { $0.latency.percentile(0.95) }
        let maximum = Self.niceCeiling(p95.compactMap { $0 }.max() ?? 0)
        func line(_ values: [Double?], color: String, name: String) -> String {
            var points: [String] = []
            var dots = ""
            for (index, value) in values.enumerated() {
                guard let value else { continue }
                let x = Self.left + (Double(index) + 0.5) * slotWidth
                let y = Self.top + plotHeight * (1 - value / maximum)
                points.append("\(Self.f(x)),\(Self.f(y))")
                dots += #"<circle cx="\#(Self.f(x))" cy="\#(Self.f(y))" r="2" fill="\#(color)"><title>\#(Self.hourLabel(slots[index].hour)) \#(name) \#(Self.milliseconds(value))</title></circle>"#
            }
            guard !points.isEmpty else { return "" }
            return #"<polyline class="\#(name)" points="\#(points.joined(separator: " "))" fill="none" stroke="\#(color)" stroke-width="1.5"/>"# + dots
        }
        let body = line(p95, color: Self.colors.p95, name: "p95") + line(p50, color: Self.colors.p50, name: "p50")
        return svg(label: "Attempt latency per hour, p50 and p95", yLabel: Self.milliseconds(maximum), body: body)
    }

    /// The frame both charts share: axes, the top value, the hour labels.
    private func svg(label: String, yLabel: String, body: String) -> String {
        var axis = ""
        for index in slots.indices where (slots.count - 1 - index) % period.labelEvery == 0 {
            let x = Self.left + (Double(index) + 0.5) * slotWidth
            let text = period == .day ? Self.hourLabel(slots[index].hour) : Self.dayLabel(slots[index].hour)
            axis += #"<text x="\#(Self.f(x))" y="\#(Self.f(Self.height - 6))" text-anchor="middle">\#(text)</text>"#
        }
        let base = Self.top + plotHeight
        return #"""
            <svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 \#(Int(Self.width)) \#(Int(Self.height))" role="img" aria-label="\#(label)" font-size="10" fill="#5b6477">\#
            <title>\#(label)</title>\#
            <line x1="\#(Self.left)" y1="\#(Self.f(base))" x2="\#(Self.f(Self.width - 8))" y2="\#(Self.f(base))" stroke="#b9c0cc"/>\#
            <line x1="\#(Self.left)" y1="\#(Self.top)" x2="\#(Self.f(Self.width - 8))" y2="\#(Self.top)" stroke="#e6e9ee"/>\#
            <text x="\#(Self.left - 4)" y="\#(Self.top + 8)" text-anchor="end">\#(yLabel)</text>\#
            <text x="\#(Self.left - 4)" y="\#(Self.f(base))" text-anchor="end">0</text>\#
            \#(axis)\#(body)</svg>
            """#
    }

    // MARK: Numbers

    /// 1, 2 or 5 times a power of ten, at least `value` (and at least 1).
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 1 else { return 1 }
        let power = pow(10, (log10(value)).rounded(.down))
        for step in [1.0, 2, 5, 10] where step * power >= value { return step * power }
        return 10 * power
    }

    static func f(_ value: Double) -> String { String(format: "%.1f", value) }

    static func count(_ value: Double) -> String { value >= 10_000 ? "\(Int(value / 1000))k" : "\(Int(value))" }

    static func milliseconds(_ value: Double) -> String {
        value >= 1000 ? String(format: "%.1f s", value / 1000) : "\(Int(value.rounded())) ms"
    }

    static func hourLabel(_ date: Date) -> String {
        String(RFC3339.format(date).dropFirst(11).prefix(5))
    }

    static func dayLabel(_ date: Date) -> String {
        String(RFC3339.format(date).dropFirst(5).prefix(5))
    }
}
