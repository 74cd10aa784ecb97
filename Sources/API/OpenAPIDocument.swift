/// The OpenAPI 3.1 description of every route, served at `/v1/openapi.json`: the
/// committed `openapi.json` beside this file, embedded when the package is built. A test
/// fails when a route is missing from it or it documents one the router lacks.
public enum OpenAPIDocument {
    public static let json = String(decoding: PackageResources.openapi_json, as: UTF8.self)
}
