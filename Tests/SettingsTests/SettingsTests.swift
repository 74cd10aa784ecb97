import Cryptography
import Delivery
import Logging
import Settings
import Testing
import Topology

@Suite struct SettingsTests {
    @Test func defaultsMatchTheLocalServices() throws {
        let settings = try Settings(environment: [:])
        #expect(settings.databaseURL == "postgres://postgres@127.0.0.1:5433/herald")
        #expect(settings.amqpURL == "amqp://guest:guest@127.0.0.1:5673/")
        #expect(settings.databasePoolSize == 8)
        #expect(settings.logLevel == .info)
        #expect(settings.logFormat == .text)
    }

    @Test func environmentThenFlags() throws {
        let environment = ["HERALD_DATABASE_URL": "postgres://a@db:5432/x", "HERALD_LOG_LEVEL": "DEBUG"]
        let fromEnvironment = try Settings(environment: environment)
        #expect(fromEnvironment.databaseURL == "postgres://a@db:5432/x")
        #expect(fromEnvironment.logLevel == .debug)
        let flagged = try Settings(environment: environment, overrides: [.databaseURL: "postgresql://b@db2/y"])
        #expect(flagged.databaseURL == "postgresql://b@db2/y")
    }

    @Test(arguments: [
        (Settings.Key.databaseURL, "mysql://x"),
        (.amqpURL, "http://broker"),
        (.databasePoolSize, "0"),
        (.databasePoolSize, "many"),
        (.logLevel, "loud"),
        (.logFormat, "xml"),
        (.retryLadder, "soon"),
        (.httpTimeout, "10"),
        (.workerConcurrency, "0"),
        (.operatorToken, "short"),
        (.allowHTTP, "maybe"),
        (.deliverBeforeStore, "sometimes"),
        (.storeLinger, "2s"),
        (.storeLinger, "a while"),
        (.consumerLinger, "1001ms"),
        (.consumerLinger, "-1ms"),
        (.apiURL, "ftp://x"),
        (.queuePrefix, "bad prefix"),
        (.headerPrefix, "Herald"),
        (.maxMessageBytes, "1000"),
        (.maxMessageBytes, "lots"),
        (.secretKey, "too-short"),
        (.secretKey, "bm90IDMyIGJ5dGVz"),
    ])
    func badValuesNameTheVariable(_ key: Settings.Key, _ value: String) {
        #expect(throws: SettingsError.self) { try Settings(environment: [key.rawValue: value]) }
        do {
            _ = try Settings(environment: [key.rawValue: value])
        } catch {
            #expect(error.key == key)
            #expect(error.description.hasPrefix(key.rawValue))
        }
    }

    @Test func deliverBeforeStoreIsAutoUnlessTurnedOnOrOff() throws {
        #expect(try Settings(environment: [:]).deliverBeforeStore == .auto)
        for (value, expected) in [("auto", DeliverBeforeStore.auto), ("AUTO", .auto), ("true", .always), ("1", .always), ("false", .never), ("no", .never)] {
            #expect(try Settings(environment: ["HERALD_DELIVER_BEFORE_STORE": value]).deliverBeforeStore == expected)
        }
    }

    @Test func aStoreLingersFiveMillisecondsUnlessSetOrOff() throws {
        #expect(try Settings(environment: [:]).storeLinger == .milliseconds(5))
        #expect(try Settings(environment: ["HERALD_STORE_LINGER": "0"]).storeLinger == .zero)
        #expect(try Settings(environment: ["HERALD_STORE_LINGER": "1s"]).storeLinger == .seconds(1))
        #expect(try Settings(environment: ["HERALD_STORE_LINGER": "20ms"]).storeLinger == .milliseconds(20))
    }

    @Test func aConsumerLingersFiveMillisecondsUnlessSetOrOff() throws {
        #expect(try Settings(environment: [:]).consumerLinger == .milliseconds(5))
        #expect(try Settings(environment: ["HERALD_CONSUMER_LINGER": "0"]).consumerLinger == .zero)
        #expect(try Settings(environment: ["HERALD_CONSUMER_LINGER": "1s"]).consumerLinger == .seconds(1))
        #expect(try Settings(environment: ["HERALD_CONSUMER_LINGER": "2ms"]).consumerLinger == .milliseconds(2))
    }

    @Test func theMessageLimitFollowsTheDataLimitUnlessSet() throws {
        #expect(try Settings(environment: [:]).maxMessageBytes == 262_144 + 65_536)
        #expect(try Settings(environment: ["HERALD_MAX_DATA_BYTES": "1000000"]).maxMessageBytes == 1_065_536)
        #expect(try Settings(environment: ["HERALD_MAX_MESSAGE_BYTES": "1048576"]).maxMessageBytes == 1_048_576)
        // Below data + envelope, valid events would be parked.
        #expect(throws: SettingsError.self) {
            try Settings(environment: ["HERALD_MAX_DATA_BYTES": "1000000", "HERALD_MAX_MESSAGE_BYTES": "1000000"])
        }
    }

    @Test func theQueuesTakeTheDeliveryLimitAndTheGroupSize() throws {
        let defaults = try Settings(environment: [:]).topology
        #expect(defaults.deliveryLimit == 20)
        #expect(defaults.quorumGroupSize == nil)
        let set = try Settings(environment: ["HERALD_DELIVERY_LIMIT": "5", "HERALD_QUORUM_GROUP_SIZE": "3", "HERALD_QUEUE_PREFIX": "q"]).topology
        #expect(set.deliveryLimit == 5)
        #expect(set.quorumGroupSize == 3)
        #expect(set.workQueue == "q.work")
        for (key, value) in [("HERALD_DELIVERY_LIMIT", "0"), ("HERALD_QUORUM_GROUP_SIZE", "0"), ("HERALD_QUORUM_GROUP_SIZE", "every")] {
            do {
                _ = try Settings(environment: [key: value])
                Issue.record("\(key)=\(value) was accepted")
            } catch {
                #expect("\(error)".hasPrefix(key))
            }
        }
    }

    @Test func aMalformedCollectorHeaderIsNamedByPositionNeverEchoed() {
        do {
            _ = try Settings(environment: ["OTEL_EXPORTER_OTLP_HEADERS": "x-team=a,Authorization: Bearer sk_live_secret"])
            Issue.record("a header without = was accepted")
        } catch {
            #expect("\(error)".contains("item 2 is not"))
            #expect(!"\(error)".contains("sk_live"))
            #expect(!"\(error)".contains("Bearer"))
        }
    }

    @Test func secretKeysAreCheckedAndNeverEchoed() throws {
        #expect(try Settings(environment: [:]).secretKeyring.current == nil)
        let key = Base64.encode(randomBytes(count: 32))
        let old = Base64.encode(randomBytes(count: 32))
        let settings = try Settings(environment: ["HERALD_SECRET_KEY": key, "HERALD_SECRET_KEYS_RETIRED": " \(old) "])
        #expect(settings.secretKeyring.current == (try SecretKeyring.Key(base64: key)))
        #expect(settings.secretKeyring.retired == [try SecretKeyring.Key(base64: old)])
        do {
            _ = try Settings(environment: ["HERALD_SECRET_KEY": key, "HERALD_SECRET_KEYS_RETIRED": "\(old),c2VjcmV0LXZhbHVl"])
            Issue.record("a malformed retired key was taken")
        } catch {
            #expect(error.key == .retiredSecretKeys)
            #expect(!error.description.contains(old) && !error.description.contains("c2VjcmV0LXZhbHVl"))
        }
    }

    @Test func urlErrorsDoNotEchoThePassword() {
        do {
            _ = try Settings(environment: ["HERALD_AMQP_URL": "amqps://user:hunter2@host/"])
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func helpListsEveryVariable() {
        for key in Settings.Key.allCases {
            #expect(Settings.environmentHelp.contains(key.rawValue))
            if !key.defaultValue.isEmpty { #expect(Settings.environmentHelp.contains(key.defaultValue)) }
        }
    }

    /// A cluster's list of broker URLs shows every node's password masked.
    @Test func everyNodesPasswordIsMasked() {
        let value = "amqp://u:pw-one@n1:5672/, amqp://u:pw-two@n2:5672/,amqp://u:pw-three@n3/"
        let shown = Settings.effective(environment: ["HERALD_AMQP_URL": value]).first { $0.key == .amqpURL }?.value ?? ""
        #expect(!shown.contains("pw-one") && !shown.contains("pw-two") && !shown.contains("pw-three"), "\(shown)")
        #expect(shown.contains("n2") && shown.contains("****"))
    }
}
