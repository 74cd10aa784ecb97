internal import CHeraldAMQP
@testable import HeraldAMQP
import Testing

@Suite("Strings kept across messages")
struct RecurringStringsTests {
    private func read(_ text: String, from names: inout RecurringStrings) -> String {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { buffer in
            names.string(amqp_bytes_t(len: buffer.count, bytes: buffer.baseAddress))
        }
    }

    /// Names that share prefixes and lengths, more of them than are kept, read in turns:
    /// each read gives back exactly its own text, whether it was kept, pushed out or new.
    @Test func everyReadGivesItsOwnText() {
        var names = RecurringStrings()
        let texts =
            (0..<(RecurringStrings.capacity + 8)).map { "x-herald-publish-tag-\($0)" }
            + ["x-herald-publish-tag", "x-herald-publish-ta", "X-HERALD-PUBLISH-TAG", "amq.ctag-0123456789abcdef", "short", ""]
        for round in 0..<3 {
            for text in round == 1 ? texts.reversed() : texts {
                #expect(read(text, from: &names) == text)
            }
        }
    }

    @Test func aRecurringNameIsTheSameStorage() {
        var names = RecurringStrings()
        let first = read("amq.ctag-0123456789abcdef", from: &names)
        let again = read("amq.ctag-0123456789abcdef", from: &names)
        // The same allocation, not only the same text: the second read made none.
        let same = first.utf8.withContiguousStorageIfAvailable { a in
            again.utf8.withContiguousStorageIfAvailable { b in a.baseAddress == b.baseAddress }
        }
        #expect(same == true)
    }
}
