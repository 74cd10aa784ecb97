package import HeraldSupport
import Foundation

/// A source's fields as a tenant sets them; nil leaves a field as it is (update) or at its
/// default (create). `mapping` and `dedup` can be removed with `null`.
package struct SourceInput: Sendable {
    package enum Change<Value: Sendable>: Sendable {
        case set(Value)
        case remove
    }

    package var name: String?
    package var service: String?
    package var verification: Verification?
    package var secret: String?
    package var mapping: Change<Mapping>?
    package var deliveryID: Change<DeliveryIDRule>?
    package var dedupWindow: Int?
    package var maxBodyBytes: Int?
    package var retention: [InboundStatus: Int]?

    /// The largest body a source may take.
    package static let maxBodyLimit = 16 * 1024 * 1024

    package init(
        name: String? = nil, service: String? = nil, verification: Verification? = nil, secret: String? = nil, mapping: Change<Mapping>? = nil,
        deliveryID: Change<DeliveryIDRule>? = nil, dedupWindow: Int? = nil, maxBodyBytes: Int? = nil, retention: [InboundStatus: Int]? = nil
    ) {
        self.name = name
        self.service = service
        self.verification = verification
        self.secret = secret
        self.mapping = mapping
        self.deliveryID = deliveryID
        self.dedupWindow = dedupWindow
        self.maxBodyBytes = maxBodyBytes
        self.retention = retention
    }

    /// From the API's JSON object; every error names its field.
    package init(object: [String: Any], creating: Bool) throws(ParseFailure) {
        var reader = try ConfigReader(object, path: "")
        name = try reader.string("name", maxLength: 200)
        if let name, name.trimmingCharacters(in: .whitespaces).isEmpty { throw ParseFailure(field: "name", "must not be blank") }
        service = try reader.string("service", maxLength: 200)
        if let value = reader.value("verification") { verification = try Verification(object: value) }
        secret = try reader.string("secret", maxLength: 500)
        if let secret, secret.isEmpty { throw ParseFailure(field: "secret", "must not be empty; leave it out to have one generated") }
        switch reader.value("mapping") {
        case nil: break
        case is NSNull: mapping = .remove
        case let value?: mapping = .set(try Mapping(object: value))
        }
        switch reader.value("dedup") {
        case nil: break
        case is NSNull: deliveryID = .remove
        case let value?: deliveryID = .set(try DeliveryIDRule(object: value))
        }
        dedupWindow = try reader.integer("dedup_window_seconds", 60...(30 * 86_400))
        maxBodyBytes = try reader.integer("max_body_bytes", 1024...Self.maxBodyLimit)
        if let value = reader.value("retention_days") { retention = try InboundSource.retention(object: value) }
        try reader.rejectUnknown()
        if creating {
            guard name != nil else { throw ParseFailure(field: "name", "is required") }
            guard verification != nil else {
                throw ParseFailure(field: "verification", "is required: {\"method\": \"none\"} or one of \(Verification.methods.dropFirst().joined(separator: ", "))")
            }
        }
    }
}
