/// A first-in-first-out queue in one array: an element taken is let go at once, and the
/// array is compacted once most of it was taken, so a reader that never catches up keeps
/// neither what it took nor a slot for each. A consumer's deliveries and the worker's
/// runners queue messages in it. `public` with `package` members, as `Batcher`: Swift
/// 6.3 does not inline the members of a `package` type into another module, and called
/// generically each operation looked the optional's and the array's types up in the
/// runtime.
public struct FIFO<Element> {
    @usableFromInline var elements: [Element?] = []
    /// The first element not yet taken.
    @usableFromInline var head = 0

    @inlinable package init() {}

    @inlinable package var count: Int { elements.count - head }

    @inlinable package var isEmpty: Bool { head == elements.count }

    @inlinable package mutating func append(_ element: Element) {
        elements.append(element)
    }

    @inlinable package mutating func popFirst() -> Element? {
        guard head < elements.count else { return nil }
        let element = elements[head]
        elements[head] = nil
        head += 1
        if head == elements.count {
            elements.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1_024 && head * 2 >= elements.count {
            elements.removeFirst(head)
            head = 0
        }
        return element
    }
}
