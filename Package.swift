// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "herald",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "herald", targets: ["herald"]),
        // What a CRM links: every module it brings along is named Herald… so none of them
        // clashes with a module of the CRM's own.
        .library(name: "HeraldProducer", targets: ["HeraldProducer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.1.0"),
    ],
    targets: [
        // C libraries from Debian, found through pkg-config.
        .systemLibrary(
            name: "CHeraldAMQP", pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(
            name: "CPostgres", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "COpenSSL", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),

        // Thin Swift modules over them.
        // Threads that own a blocking C handle, and the date and duration arithmetic they share.
        .target(name: "HeraldSupport", swiftSettings: swiftSettings),
        .target(name: "Cryptography", dependencies: ["COpenSSL"], swiftSettings: swiftSettings),
        .target(
            name: "HeraldAMQP",
            dependencies: [
                "CHeraldAMQP", "HeraldSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Postgres",
            dependencies: ["CPostgres", "HeraldSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),
        .target(
            name: "HTTPClient",
            dependencies: ["CCurl", "HeraldSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),

        // Herald itself, in the order an event travels: producer → fan-out → delivery → retry.
        .target(name: "HeraldEvents", dependencies: ["HeraldSupport"], swiftSettings: swiftSettings),
        .target(name: "Topology", dependencies: ["HeraldAMQP", "Delivery", "HeraldEvents", "HeraldSupport"], swiftSettings: swiftSettings),
        .target(
            name: "HeraldProducer",
            dependencies: [
                "HeraldAMQP", "HeraldEvents", "HeraldSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings),
        .target(name: "Policy", dependencies: ["HTTPClient"], swiftSettings: swiftSettings),
        .target(
            name: "FanOut",
            dependencies: [
                "HeraldEvents", "HeraldSupport", "Postgres", "Cryptography", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Delivery",
            dependencies: ["HeraldEvents", "FanOut", "HTTPClient", "Cryptography", "HeraldSupport"],
            swiftSettings: swiftSettings),
        // The one owner of the delivery record: every statement on events, deliveries and attempts.
        .target(
            name: "Records",
            dependencies: ["HeraldEvents", "Delivery", "Postgres", "HeraldSupport", "Cryptography"],
            swiftSettings: swiftSettings),
        .target(
            name: "Relay",
            dependencies: [
                "HeraldEvents", "Postgres", "HeraldProducer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        // Inbound webhooks, in the order a request travels: source → intake (verify) →
        // parsing (body, mapping) → storage (stored before the 2xx; events through the outbox).
        .target(
            name: "Inbound",
            dependencies: ["Postgres", "Cryptography", "Delivery", "HeraldEvents", "HeraldSupport", "Records"],
            swiftSettings: swiftSettings),
        .target(
            name: "Management",
            dependencies: ["HeraldAMQP", "Postgres", "Delivery", "FanOut", "Records", "Topology", "Cryptography", "HeraldSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),
        .target(
            name: "Operations",
            dependencies: [
                "HeraldAMQP", "Postgres", "Management", "Records", "Topology", "Delivery", "Inbound", "HTTPClient", "HeraldSupport",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "API",
            dependencies: [
                "Management", "Records", "Policy", "HeraldEvents", "HeraldProducer", "Delivery", "FanOut", "Postgres", "HeraldSupport", "Inbound",
                "Cryptography",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The API's single source of truth, compiled into the binary (no resource bundle to ship).
            resources: [.embedInCode("openapi.json")],
            swiftSettings: swiftSettings),
        // The dashboard: the tenant portal (/portal) and the operator console (/console),
        // server-rendered pages on the API's router, templates compiled in.
        .target(
            name: "Dashboard",
            dependencies: [
                "API", "Management", "Records", "Operations", "Policy", "HeraldEvents", "HeraldSupport", "Delivery", "FanOut", "HTTPClient", "Cryptography",
                "Inbound",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [
                .embedInCode("Templates/layout.mustache"), .embedInCode("Templates/message.mustache"),
                .embedInCode("Templates/endpoints.mustache"), .embedInCode("Templates/endpoint.mustache"),
                .embedInCode("Templates/endpoint_form.mustache"), .embedInCode("Templates/deliveries.mustache"),
                .embedInCode("Templates/delivery.mustache"), .embedInCode("Templates/help.mustache"), .embedInCode("Templates/portal.css"),
                .embedInCode("Templates/console_signin.mustache"), .embedInCode("Templates/console_tenants.mustache"),
                .embedInCode("Templates/console_queues.mustache"), .embedInCode("Templates/console_workers.mustache"),
                .embedInCode("Templates/sources.mustache"), .embedInCode("Templates/source.mustache"),
                .embedInCode("Templates/source_form.mustache"), .embedInCode("Templates/inbound.mustache"),
                .embedInCode("Templates/inbound_rows.mustache"), .embedInCode("Templates/inbound_webhook.mustache"),
                // The receivers' verification code shown on the help page: links to examples/verify.
                .embedInCode("Help/verify.py"), .embedInCode("Help/verify.js"), .embedInCode("Help/verify.php"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Worker",
            dependencies: [
                "HeraldAMQP", "HeraldEvents", "FanOut", "Delivery", "Records", "Topology", "HTTPClient", "Postgres", "HeraldSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Settings",
            dependencies: ["Delivery", "HeraldSupport", "Cryptography", "Inbound", "Topology", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),
        .target(
            name: "Migrations",
            dependencies: ["Postgres", "Cryptography", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "herald",
            dependencies: [
                "Settings", "Migrations", "Postgres", "HeraldAMQP", "HeraldEvents", "HeraldProducer", "FanOut", "Delivery", "Records", "Worker", "Cryptography", "HeraldSupport",
                "Topology", "HTTPClient", "API", "Dashboard", "Management", "Policy", "Operations", "Relay", "Inbound",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings),

        // Unit tests: pure logic, no sockets.
        .testTarget(name: "HeraldSupportTests", dependencies: ["HeraldSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "CryptographyTests", dependencies: ["Cryptography"], swiftSettings: swiftSettings),
        .testTarget(name: "HeraldAMQPTests", dependencies: ["HeraldAMQP", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres"], swiftSettings: swiftSettings),
        .testTarget(name: "HTTPClientTests", dependencies: ["HTTPClient", "HeraldSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SettingsTests", dependencies: ["Settings", "Cryptography", "Delivery", "Topology"], swiftSettings: swiftSettings),
        .testTarget(name: "MigrationsTests", dependencies: ["Migrations"], swiftSettings: swiftSettings),
        .testTarget(
            name: "OperationsTests",
            dependencies: ["Operations", .product(name: "Tracing", package: "swift-distributed-tracing")],
            swiftSettings: swiftSettings),
        .testTarget(name: "HeraldEventsTests", dependencies: ["HeraldEvents"], swiftSettings: swiftSettings),
        .testTarget(name: "ManagementTests", dependencies: ["Management"], swiftSettings: swiftSettings),
        .testTarget(name: "PolicyTests", dependencies: ["Policy", "HTTPClient"], swiftSettings: swiftSettings),
        .testTarget(name: "FanOutTests", dependencies: ["FanOut", "HeraldEvents", "HeraldSupport", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "DeliveryTests", dependencies: ["Delivery", "FanOut", "HeraldEvents", "HTTPClient", "Cryptography", "Topology", "HeraldAMQP"], swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerTests",
            dependencies: ["Worker", "Records", "TestSupport", "FanOut", "Delivery", "HTTPClient", "HeraldEvents", "HeraldAMQP", "Topology"],
            swiftSettings: swiftSettings),
        .testTarget(name: "InboundTests", dependencies: ["Inbound", "Cryptography", "Delivery"], swiftSettings: swiftSettings),
        .testTarget(name: "RecordsTests", dependencies: ["Records", "Cryptography"], swiftSettings: swiftSettings),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "Records", "Management", "Delivery"], swiftSettings: swiftSettings),
        .testTarget(
            name: "APITests",
            dependencies: [
                "API", "Records", "Management", "Postgres", "HeraldProducer", "Topology", "HeraldEvents", "TestSupport", "Inbound", "Cryptography",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings),

        // Integration tests against the real RabbitMQ, PostgreSQL and HTTP servers.
        .target(
            name: "TestSupport",
            dependencies: [
                "Postgres", "Records", "Delivery", "HeraldEvents", "HeraldSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TestSupport", "HeraldAMQP", "Postgres", "HTTPClient", "Migrations", "Cryptography", "HeraldEvents", "HeraldProducer", "HeraldSupport",
                "FanOut", "Delivery", "Records", "Worker", "Topology", "API", "Dashboard", "Management", "Policy", "Operations", "Relay", "Inbound",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings),
        // The fault run (`swift run faultrun`): publishes under worker kills, freezes and server
        // restarts, then accounts for every (event, endpoint) pair.
        .executableTarget(
            name: "faultrun",
            dependencies: ["TestSupport", "HeraldAMQP", "Postgres", "HeraldProducer", "HeraldEvents", "Migrations", "Delivery", "Records", "Topology"],
            path: "Tests/FaultRun",
            swiftSettings: swiftSettings),
        // Tests that stop and restart servers: they use a second pair of servers (the
        // `faults` instance of scripts/services) so the suites above are never disturbed.
        // The benchmarks (`bench/run`): ceilings, throughput, latency, isolation, scaling.
        .executableTarget(
            name: "herald-bench",
            dependencies: [
                "HeraldAMQP", "Postgres", "HTTPClient", "HeraldProducer", "HeraldEvents", "Migrations", "Delivery", "FanOut", "Topology", "Settings",
                "Records", "Cryptography",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "bench/HeraldBench",
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FaultTests",
            dependencies: ["TestSupport", "HeraldAMQP", "Postgres", "HeraldProducer", "HeraldEvents", "HTTPClient"],
            swiftSettings: swiftSettings),
    ]
)
