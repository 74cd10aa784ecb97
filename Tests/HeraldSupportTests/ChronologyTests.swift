import HeraldSupport
import Testing

@Suite("Civil dates and durations")
struct ChronologyTests {
    @Test(arguments: [
        (0, 1970, 1, 1), (-1, 1969, 12, 31), (11_016, 2000, 2, 29), (11_017, 2000, 3, 1), (-719_468, 0, 3, 1),
        (20_585, 2026, 5, 12), (2_932_896, 9999, 12, 31), (-25_567, 1900, 1, 1),
    ])
    func knownDates(_ days: Int, _ year: Int, _ month: Int, _ day: Int) {
        #expect(CivilDate.date(days: days) == (year, month, day))
        #expect(CivilDate.days(year: year, month: month, day: day) == days)
    }

    /// Every day of four centuries, both ways, one day after another.
    @Test func everyDayRoundTripsAndFollowsTheLast() {
        var previous = CivilDate.date(days: -146_098)
        var wrong: [Int] = []
        for days in -146_097...146_097 {
            let date = CivilDate.date(days: days)
            let follows = date.day == 1 ? (date.month == previous.month % 12 + 1) : (date.day == previous.day + 1 && date.month == previous.month)
            if CivilDate.days(year: date.year, month: date.month, day: date.day) != days || !follows { wrong.append(days) }
            previous = date
        }
        #expect(wrong.isEmpty)
    }

    @Test func durationsInWholeMilliseconds() {
        #expect(Duration.seconds(90).milliseconds == 90_000)
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
        #expect(Duration.microseconds(2999).milliseconds == 2)
        #expect(Duration.zero.milliseconds == 0)
    }
}
