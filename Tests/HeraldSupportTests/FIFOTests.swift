import HeraldSupport
import Testing

@Suite("FIFO: a queue in one array")
struct FIFOTests {
    final class Body {
        let n: Int
        init(_ n: Int) { self.n = n }
    }

    @Test func elementsComeOutInOrderThroughCompactions() throws {
        var fifo = FIFO<Int>()
        var taken: [Int] = []
        var next = 0
        // Appends outrun takes, so the head passes a thousand with more waiting behind it.
        for round in 0..<50 {
            for _ in 0..<(100 + round) {
                fifo.append(next)
                next += 1
            }
            for _ in 0..<90 {
                let element = fifo.popFirst()
                taken.append(try #require(element))
            }
            #expect(fifo.count == next - taken.count)
        }
        while let element = fifo.popFirst() { taken.append(element) }
        #expect(taken == Array(0..<next))
        #expect(fifo.isEmpty)
        let none = fifo.popFirst()
        #expect(none == nil)
    }

    @Test func whatWasTakenIsLetGoWhileOthersWait() {
        var fifo = FIFO<Body>()
        weak var first: Body?
        do {
            let body = Body(0)
            first = body
            fifo.append(body)
        }
        fifo.append(Body(1))
        do {
            let taken = fifo.popFirst()
            #expect(taken?.n == 0)
        }
        // Taken and dropped by its taker: the queue keeps no reference.
        #expect(first == nil)
        #expect(fifo.count == 1)
    }
}
