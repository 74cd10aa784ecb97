import Cryptography
import Foundation
import Records
import Testing

@Suite struct IdentityTests {
    /// The identity is part of the wire contract (a message redelivered after an upgrade
    /// must keep its `webhook-id`): SHA-256 of the domain, the tenant's and the endpoint's
    /// bytes and the event id, each half marked as version 8, composed here from that
    /// definition.
    @Test(arguments: ["evt_1", "", "é-🙂", String(repeating: "x", count: 300)])
    func anIdentityIsTheDigestOfItsNamesByDefinition(event: String) {
        let tenant = UUID(), endpoint = UUID()
        var input = Array("herald.delivery\u{0}".utf8)
        withUnsafeBytes(of: tenant.uuid) { input += $0 }
        withUnsafeBytes(of: endpoint.uuid) { input += $0 }
        input += event.utf8
        var digest = SHA256.hash(input)
        for half in [0, 16] {
            digest[half + 6] = digest[half + 6] & 0x0F | 0x80
            digest[half + 8] = digest[half + 8] & 0x3F | 0x80
        }
        let identity = DeliveryState.identity(tenant: tenant, event: event, endpoint: endpoint)
        #expect(withUnsafeBytes(of: identity.id.uuid) { Array($0) } == Array(digest[0..<16]))
        #expect(withUnsafeBytes(of: identity.requestID.uuid) { Array($0) } == Array(digest[16..<32]))
    }
}
