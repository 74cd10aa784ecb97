package import Foundation

/// Date-times as text, the one strict reader and writer behind `occurred_at`, query
/// dates, cursors, the signature headers and PostgreSQL's `timestamptz` text format.
///
/// Only years 0001 to 9999 exist here: what four digits can write and what every
/// receiver's parser accepts. The reader refuses what a lenient parser would roll over
/// (`2026-02-30`, `12:99:00`); the writer never traps, whatever `Date` it is given.
package enum RFC3339 {
    /// 0001-01-01T00:00:00Z.
    package static let earliest = Date(timeIntervalSince1970: Double(earliestSecond))
    /// 9999-12-31T23:59:59.999999Z.
    package static let latest = Date(timeIntervalSince1970: Double(latestSecond) + 0.999_999)

    static let earliestSecond = Int64(CivilDate.days(year: 1, month: 1, day: 1)) * 86_400
    static let latestSecond = Int64(CivilDate.days(year: 9999, month: 12, day: 31)) * 86_400 + 86_399

    /// Whether `date` can be written and read back: finite and within `earliest...latest`.
    package static func isRepresentable(_ date: Date) -> Bool {
        let t = date.timeIntervalSince1970
        return t.isFinite && t >= Double(earliestSecond) && t < Double(latestSecond + 1)
    }

    /// `2026-05-12T09:30:00Z`, `…T09:30:00.25+02:00`, and PostgreSQL's `2026-05-12 09:30:00.123456+00`:
    /// a date, `T` or a space, a time, an optional fraction of up to nine digits, and `Z` or
    /// an offset (`±hh`, `±hh:mm` or `±hhmm`). Nil for anything else, for a day the month
    /// does not have, and for an instant outside the years 0001 to 9999.
    package static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    package static func parse(bytes b: UnsafeBufferPointer<UInt8>) -> Date? {
        var r = Reader(bytes: b)
        guard let year = r.number(4), r.expect(UInt8(ascii: "-")), let month = r.number(2), r.expect(UInt8(ascii: "-")),
            let day = r.number(2)
        else { return nil }
        guard r.expect(UInt8(ascii: "T")) || r.expect(UInt8(ascii: "t")) || r.expect(UInt8(ascii: " ")) else { return nil }
        guard let hour = r.number(2), r.expect(UInt8(ascii: ":")), let minute = r.number(2), r.expect(UInt8(ascii: ":")),
            let second = r.number(2)
        else { return nil }
        var nanos = 0
        if r.expect(UInt8(ascii: ".")) {
            var digits = 0
            while let byte = r.peek, byte >= 48, byte <= 57 {
                guard digits < 9 else { return nil }
                nanos = nanos * 10 + Int(byte - 48)
                digits += 1
                r.at += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 { nanos *= 10 }
        }
        var offset = 0
        if r.expect(UInt8(ascii: "Z")) || r.expect(UInt8(ascii: "z")) {
        } else if let byte = r.peek, byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") {
            let sign = byte == UInt8(ascii: "-") ? -1 : 1
            r.at += 1
            guard let hours = r.number(2), hours < 24 else { return nil }
            var minutes = 0
            if r.peek != nil {
                _ = r.expect(UInt8(ascii: ":"))
                guard let m = r.number(2), m < 60 else { return nil }
                minutes = m
            }
            offset = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard r.at == b.count, year >= 1, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            hour < 24, minute < 60, second < 60
        else { return nil }
        let seconds = Int64(CivilDate.days(year: year, month: month, day: day)) * 86_400
            + Int64(hour * 3600 + minute * 60 + second - offset)
        guard seconds >= earliestSecond, seconds <= latestSecond else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1e9)
    }

    /// The parser's place in its bytes. A value, not nested functions over a captured
    /// variable: those boxed it, and every read and write was checked for exclusive
    /// access at run time (a dozen checks for each event's `occurred_at`).
    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var at = 0

        var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

        /// `digits` decimal digits as a number, or nil.
        mutating func number(_ digits: Int) -> Int? {
            guard at + digits <= bytes.count else { return nil }
            var value = 0
            for k in at..<(at + digits) {
                let d = Int(bytes[k]) &- 48
                guard d >= 0 && d <= 9 else { return nil }
                value = value * 10 + d
            }
            at += digits
            return value
        }

        /// Whether the next byte is `c`, taken if so.
        mutating func expect(_ c: UInt8) -> Bool {
            guard at < bytes.count, bytes[at] == c else { return false }
            at += 1
            return true
        }
    }

    /// Microseconds since 1970 of the instant `format` writes: rounded to the microsecond
    /// (PostgreSQL's precision) and clamped to `earliest...latest`, so text and binary
    /// `timestamptz` parameters name the same instant.
    package static func microseconds(_ date: Date) -> Int64 {
        let t = date.timeIntervalSince1970
        if t.isNaN || t < Double(earliestSecond) { return earliestSecond * 1_000_000 }
        if t >= Double(latestSecond + 1) { return latestSecond * 1_000_000 + 999_999 }
        // Whole seconds and the fraction apart: exact, where `t * 1e6` would round.
        let whole = t.rounded(.down)
        return min(Int64(whole) * 1_000_000 + Int64(((t - whole) * 1_000_000).rounded()), latestSecond * 1_000_000 + 999_999)
    }

    /// `2026-05-12T09:30:00Z` with `fractionDigits` 0, `…:00.250Z` with 3, `…:00.250000Z`
    /// with 6 (PostgreSQL's precision): the instant to the nearest microsecond, cut to the
    /// digits shown. A date outside the years 0001 to 9999 is written as the nearest one
    /// inside (the readers refuse such dates before they get here).
    package static func format(_ date: Date, fractionDigits: Int = 0) -> String {
        let micros = microseconds(date)
        let second = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = Int(micros - second * 1_000_000)
        let days = second >= 0 ? second / 86_400 : (second - 86_399) / 86_400
        let secondOfDay = Int(second - days * 86_400)
        let (year, month, day) = CivilDate.date(days: Int(days))
        let digits = min(max(fractionDigits, 0), 6)
        return String(unsafeUninitializedCapacity: 27) { out in
            var n = 0
            func put(_ value: Int, _ width: Int) {
                var value = value
                for k in stride(from: width - 1, through: 0, by: -1) {
                    out[n + k] = UInt8(48 + value % 10)
                    value /= 10
                }
                n += width
            }
            func put(_ c: Unicode.Scalar) {
                out[n] = UInt8(ascii: c)
                n += 1
            }
            put(year, 4); put("-"); put(month, 2); put("-"); put(day, 2); put("T")
            put(secondOfDay / 3600, 2); put(":"); put(secondOfDay / 60 % 60, 2); put(":"); put(secondOfDay % 60, 2)
            if digits > 0 {
                put(".")
                var scaled = fraction
                for _ in digits..<6 { scaled /= 10 }
                put(scaled, digits)
            }
            put("Z")
            return n
        }
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
