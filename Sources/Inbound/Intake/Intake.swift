package import HeraldSupport
package import Foundation

/// What to store and answer for one request to a source's URL.
package struct Verdict: Sendable, Equatable {
    package var status: InboundStatus
    /// What the sender gets.
    package var httpStatus: Int
    /// Why it was rejected, or where parsing failed.
    package var failure: ParseFailure?
    /// Whether the body is stored (not when it was too large or never arrived).
    package var keepsBody: Bool
    /// The sender's delivery id, when it gave one: a repeat within the window is a duplicate.
    package var dedupKey: String?
    /// What a processed webhook becomes.
    package var event: MappedEvent?
}

/// The decision for a request, made without a socket or a database, in order: the body
/// arrived whole and within the limit, the sender is verified, the body is a form Herald
/// reads, it parses, and the mapping makes an event of it. Storing the verdict (and
/// finding a duplicate) is `InboundStore.receive`'s part.
package enum Intake {
    package static func decide(
        _ request: InboundRequest, source: InboundSource, secret: String, now: Date, maxDataBytes: Int
    ) -> Verdict {
        func refuse(_ status: Int, _ reason: String, keepsBody: Bool) -> Verdict {
            Verdict(status: .rejected, httpStatus: status, failure: ParseFailure(field: nil, reason), keepsBody: keepsBody)
        }
        if request.timedOut {
            return refuse(408, "the body did not arrive in time (\(request.bodySize) bytes received)", keepsBody: false)
        }
        if request.isTooLarge {
            return refuse(413, "the body is more than \(source.maxBodyBytes) bytes, this source's limit", keepsBody: false)
        }
        if let reason = source.verification.failure(of: request, secret: secret, now: now) {
            return refuse(401, "verification failed: \(reason)", keepsBody: true)
        }
        let contentType = request.header("Content-Type") ?? ""
        guard let format = BodyFormat(contentType: contentType) else {
            let given = contentType.isEmpty ? "no Content-Type" : "Content-Type '\(contentType.prefix(100))'"
            return refuse(
                415, "\(given) is not read here; send application/json, application/x-www-form-urlencoded or multipart/form-data",
                keepsBody: true)
        }
        // The body's tree only where something is read from it; otherwise a check that
        // holds no tree, so a large hostile body costs no memory beyond its bytes.
        var readsPath = false
        if case .jsonPath = source.effectiveDeliveryID { readsPath = true }
        let body: ParsedBody?
        do {
            if source.mapping != nil || readsPath {
                body = try format.parse(request.body)
            } else {
                try format.check(request.body)
                body = nil
            }
        } catch {
            return Verdict(status: .parseError, httpStatus: 400, failure: error, keepsBody: true)
        }
        let dedupKey = source.effectiveDeliveryID.flatMap { deliveryID(of: request, body: body, rule: $0) }
        guard let mapping = source.mapping, let body else {
            return Verdict(status: .received, httpStatus: 200, keepsBody: true, dedupKey: dedupKey)
        }
        do {
            guard let event = try mapping.apply(to: body, request: request, maxDataBytes: maxDataBytes) else {
                return Verdict(status: .received, httpStatus: 200, keepsBody: true, dedupKey: dedupKey)
            }
            return Verdict(status: .processed, httpStatus: 200, keepsBody: true, dedupKey: dedupKey, event: event)
        } catch {
            // Accepted and kept: the tenant fixes the mapping and replays it; the sender
            // could not do better by sending again.
            return Verdict(status: .parseError, httpStatus: 200, failure: error, keepsBody: true, dedupKey: dedupKey)
        }
    }

    /// The sender's delivery id; nil when it gave none (the request is then never a duplicate).
    static func deliveryID(of request: InboundRequest, body: ParsedBody?, rule: DeliveryIDRule) -> String? {
        let value: String?
        switch rule {
        case .header(let name): value = request.header(name)
        case .jsonPath(let path): value = body.flatMap { path.find(in: $0.root)?.scalarText }
        }
        guard let value, !value.isEmpty, value.unicodeScalars.count <= 200, !value.utf8.contains(0) else { return nil }
        return value
    }

    /// A mapping's result for a stored body, when a webhook is replayed: the same steps
    /// after verification (which the stored webhook passed when it arrived).
    package static func remap(
        body: [UInt8], contentType: String, headers: [(name: String, value: String)], source: InboundSource, maxDataBytes: Int
    ) -> Verdict {
        var trusted = source
        trusted.verification = .none
        // The stored headers (whole) first; the content type column (cut to 200) only if they have none.
        let request = InboundRequest(headers: headers + [("Content-Type", contentType)], body: body)
        return decide(request, source: trusted, secret: "", now: Date(), maxDataBytes: maxDataBytes)
    }
}
