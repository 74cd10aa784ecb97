@testable import HeraldSupport
import Foundation
import Testing

@Suite("RFC 3339 date-times: one strict reader, a writer that never traps")
struct RFC3339Tests {
    @Test(arguments: [
        ("2026-05-12 09:30:00+00", 1_778_578_200.0),
        ("2026-05-12 09:30:00.5+00", 1_778_578_200.5),
        ("2026-05-12T09:30:00Z", 1_778_578_200.0),
        ("2026-05-12t09:30:00z", 1_778_578_200.0),
        ("2026-05-12T09:30:00.000Z", 1_778_578_200.0),
        ("2026-05-12T11:30:00+02:00", 1_778_578_200.0),
        ("2026-05-12 11:30:00+02", 1_778_578_200.0),
        ("2026-05-12T11:30:00+0200", 1_778_578_200.0),
        ("2026-05-12 04:00:00-05:30", 1_778_578_200.0),
        ("2026-05-13T05:19:00+19:49", 1_778_578_200.0),
        ("2026-05-12T09:30:00.123456789Z", 1_778_578_200.123_456_789),
        ("1970-01-01 00:00:00+00", 0.0),
        ("1969-12-31 23:59:59+00", -1.0),
        ("2000-02-29 00:00:00+00", 951_782_400.0),
        ("0001-01-01T00:00:00Z", -62_135_596_800.0),
        ("9999-12-31T23:59:59.999999Z", 253_402_300_799.999_999),
    ])
    func reads(_ text: String, _ seconds: Double) throws {
        let date = try #require(RFC3339.parse(text))
        #expect(abs(date.timeIntervalSince1970 - seconds) < 0.000_01)
    }

    @Test(arguments: [
        "", "2026-05-12", "2026-13-01 00:00:00+00", "2026-05-12 25:00:00+00", "infinity", "2026-05-12 09:30:00",
        "2026-05-12 09:30:00+00 junk", "2026-02-30T09:30:00Z", "2026-02-29T09:30:00Z", "1900-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-05-12T12:99:00Z", "2026-05-12T12:00:60Z", "2026-05-12T24:00:00Z",
        "2026-05-12T09:30:00+24:00", "2026-05-12T09:30:00+05:60", "2026-05-12T09:30:00.Z", "2026-05-12T09:30:00.1234567890Z",
        "0000-12-31T00:00:00Z", "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01", "+2026-05-12T09:30:00Z",
        "2026-5-12T09:30:00Z", "２０２６-05-12T09:30:00Z", "2026-05-12T09:30:00+5", "2026-05-12T09:30:00+05:3",
    ])
    func refuses(_ text: String) {
        #expect(RFC3339.parse(text) == nil, "\(text)")
    }

    @Test func writesWithTheDigitsAsked() {
        let date = Date(timeIntervalSince1970: 1_778_578_200.25)
        #expect(RFC3339.format(date) == "2026-05-12T09:30:00Z")
        #expect(RFC3339.format(date, fractionDigits: 3) == "2026-05-12T09:30:00.250Z")
        #expect(RFC3339.format(date, fractionDigits: 6) == "2026-05-12T09:30:00.250000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -0.5), fractionDigits: 6) == "1969-12-31T23:59:59.500000Z")
    }

    /// What the forged cursor reached: no `Date` makes the writer trap; outside the years
    /// 0001 to 9999 it writes the nearest bound.
    @Test func neverTrapsOnAnyDate() {
        let bounds = ["0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z"]
        for seconds in [9_223_372_036_854.775807, -9_223_372_036_854.775808, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .infinity, -.infinity, .nan] {
            #expect(bounds.contains(RFC3339.format(Date(timeIntervalSince1970: seconds), fractionDigits: 6)))
            #expect(!RFC3339.isRepresentable(Date(timeIntervalSince1970: seconds)))
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let seconds = Double(bitPattern: generator.next())
            let text = RFC3339.format(Date(timeIntervalSince1970: seconds), fractionDigits: 6)
            #expect(text.utf8.count == 27)
        }
    }

    /// The hand-written writer agrees with Foundation's across centuries, leap days and the
    /// epoch's edges; what it writes reads back to the same instant.
    @Test func agreesWithFoundationAndRoundTrips() throws {
        var dates = [0, -1, 951_782_400, 951_868_799, 1_778_578_200.25, 4_102_444_800, -2_208_988_800.5, 253_402_300_799]
            .map { Date(timeIntervalSince1970: $0) }
        var generator = SystemRandomNumberGenerator()
        // Quarter seconds are exact in binary, so both sides see the same instant.
        for _ in 0..<2000 {
            let quarters = Int64.random(in: -8_000_000_000...1_000_000_000_000, using: &generator)
            dates.append(Date(timeIntervalSince1970: Double(quarters) / 4))
        }
        for date in dates {
            let expected = date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false, timeZone: .gmt))
            #expect(RFC3339.format(date) == expected, "\(date.timeIntervalSince1970)")
            let fractional = date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
            #expect(RFC3339.format(date, fractionDigits: 3) == fractional, "\(date.timeIntervalSince1970)")
            let back = try #require(RFC3339.parse(RFC3339.format(date, fractionDigits: 6)))
            // Within a microsecond, or the resolution of a `Date` that far from 1970.
            #expect(abs(back.timeIntervalSince1970 - date.timeIntervalSince1970) <= 0.000_001 + date.timeIntervalSince1970.ulp)
        }
    }

    /// Random text and mutations of valid date-times: the reader never traps, and what it
    /// accepts is representable and writes back to text it accepts again.
    @Test func readerSurvivesRandomInput() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789-:.+TZtz ".utf8) + [0, 0xFF, 0xC3]
        let seeds = Array("2026-05-12T09:30:00.123+02:00".utf8)
        var accepted = 0
        for round in 0..<50_000 {
            var bytes = seeds
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            } else {
                for _ in 0..<Int.random(in: 1...3, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = alphabet.randomElement(using: &generator)!
                }
            }
            guard let date = RFC3339.parse(String(decoding: bytes, as: UTF8.self)) else { continue }
            accepted += 1
            #expect(RFC3339.isRepresentable(date))
            #expect(RFC3339.parse(RFC3339.format(date, fractionDigits: 6)) != nil)
        }
        #expect(accepted > 0)
    }

    @Test func durationsInMillisecondsSaturate() {
        #expect(Duration.seconds(Int64.max).milliseconds == .max)
        #expect(Duration.seconds(Int64.min).milliseconds == .min)
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
    }
}
