import API
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The committed OpenAPI document is the API's source of truth: the router serves exactly
/// the operations it describes, checked both ways, without a socket.
@Suite("OpenAPI document and router")
struct DocumentTests {
    @Test func theDocumentDescribesExactlyTheRoutesTheRouterServes() async throws {
        let harness = try DeliveryLogRouteTests.Harness()
        try await harness.app.test(.router) { client in
            let document = try await client.execute(uri: "/v1/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                return try DeliveryLogRouteTests.json(response.body)
            }
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var documented: Set<String> = []
            for (path, operations) in paths {
                for method in operations.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                    documented.insert("\(method.uppercased()) \(path)")
                }
            }
            let routes = Set(harness.api.routeList)
            #expect(routes.count == harness.api.routeList.count, "no route is registered twice")
            #expect(documented.subtracting(routes).isEmpty, "documented but not routed: \(documented.subtracting(routes).sorted())")
            #expect(routes.subtracting(documented).isEmpty, "routed but not documented: \(routes.subtracting(documented).sorted())")
            // Every documented operation reaches a handler: none gets the router's own 404 or a 405.
            for operation in documented.sorted() {
                let parts = operation.split(separator: " ")
                let path = parts[1].replacingOccurrences(of: "{id}", with: UUID().uuidString)
                try await client.execute(uri: path, method: .init(String(parts[0]))!, headers: [.authorization: "Bearer hk_unknown"]) { response in
                    #expect(response.status != .methodNotAllowed, "\(operation)")
                    let body = String(buffer: response.body)
                    // The router's own 404 says only "Not Found"; a handler's says what is missing.
                    #expect(!(response.status == .notFound && body.contains(#""detail":"Not Found""#)), "\(operation) is not routed")
                }
            }
        }
    }
}
