import Foundation
public import Hummingbird

/// An RFC 9457 problem: every error the API returns, as `application/problem+json`,
/// naming the offending field when there is one.
public struct Problem: HTTPResponseError, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var title: String
    public var detail: String
    public var field: String?
    /// Headers the answer carries besides its content type (`Allow`, `Retry-After`).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ detail: String, field: String? = nil) {
        self.status = status
        self.title = status.reasonPhrase
        self.detail = detail
        self.field = field
    }

    public static func badRequest(_ field: String, _ detail: String) -> Problem {
        Problem(.badRequest, "\(field): \(detail)", field: field)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var object: [String: Any] = ["type": "about:blank", "title": title, "status": Int(status.code), "detail": detail]
        if let field { object["field"] = field }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        var fields = headers
        fields[.contentType] = "application/problem+json"
        return Response(
            status: status, headers: fields,
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
