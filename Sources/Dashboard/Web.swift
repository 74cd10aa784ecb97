import API
import Cryptography
import Foundation
import Hummingbird
import Logging
import Management
import Records
import Inbound

/// Why a dashboard page cannot be shown; each is a page of its own, never a stack trace.
enum PortalError: Error {
    case linkUnusable, signedOut, forged, readOnly, notFound
}

/// Answers every dashboard request with its security headers, and turns every error into a page.
struct DashboardMiddleware: RouterMiddleware {
    typealias Context = APIContext
    let pages: Pages
    /// Origins that may frame these pages; none: no framing at all.
    let frameAncestors: [String]
    /// The frame of refusal pages (signed out: no navigation).
    let chrome: Chrome

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as PortalError {
            response = pages.refusal(error, chrome: chrome)
        } catch let error as ManagementError where error.kind == .notFound {
            response = pages.refusal(.notFound, chrome: chrome)
        } catch let error as InboundError where error.kind == .notFound {
            response = pages.refusal(.notFound, chrome: chrome)
        } catch let error as InboundError {
            response = pages.message(heading: "Not possible now", message: error.message, status: .conflict, chrome: chrome)
        } catch let error as RecordError where error.kind == .notFound {
            response = pages.refusal(.notFound, chrome: chrome)
        } catch let error as RecordError {
            response = pages.message(heading: "Not possible now", message: error.message, status: .conflict, chrome: chrome)
        } catch let error as ManagementError {
            response = pages.message(
                heading: "Not possible now", message: error.message, status: error.kind == .unavailable ? .serviceUnavailable : .conflict, chrome: chrome)
        } catch let error as any HTTPResponseError {
            // A body too large, a bad parameter: its status, as a page.
            response = pages.message(
                heading: error.status.reasonPhrase, message: "The request could not be handled (\(error.status.code)).", status: error.status, chrome: chrome)
        } catch {
            // Anything else (the database away): a page that reveals nothing, with the same headers.
            context.logger.error("dashboard page failed", metadata: ["error": "\(String(describing: type(of: error)))"])
            response = pages.message(
                heading: "Something went wrong", message: "The page could not be shown. Try again in a moment.", status: .internalServerError, chrome: chrome)
        }
        let ancestors = frameAncestors.isEmpty ? "'none'" : frameAncestors.joined(separator: " ")
        response.headers[.contentSecurityPolicy] =
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors \(ancestors)"
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        // The link in the address bar is single-use, but it must not travel on.
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

/// An `application/x-www-form-urlencoded` body.
struct Form {
    var fields: [(String, String)] = []

    init(_ body: String) {
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            fields.append((decode(parts[0]), parts.count > 1 ? decode(parts[1]) : ""))
        }
    }

    /// A form post's body; `PortalError.forged` unless it carries the session's `csrf` token.
    static func read(_ request: Request, csrf expected: String) async throws -> Form {
        let form = Form(String(buffer: try await request.body.collect(upTo: 64 * 1024)))
        guard let token = form.value("csrf"), constantTimeEquals(Array(token.utf8), Array(expected.utf8)) else {
            throw PortalError.forged
        }
        return form
    }

    func value(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
    func values(_ name: String) -> [String] { fields.filter { $0.0 == name }.map(\.1) }
}

extension Request {
    /// The value of cookie `name`, if the request carries it.
    func cookie(_ name: String) -> String? {
        for header in headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix(name + "=") { return String(trimmed.dropFirst(name.count + 1)) }
            }
        }
        return nil
    }
}
