import ArgumentParser
import Cryptography
import Inbound
import Logging
import Management
import Postgres
import Settings

/// Endpoint secrets at rest: a key to seal them with, and sealing them again after a
/// key rotation.
struct Secrets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keys that encrypt endpoint secrets at rest.",
        discussion: """
            To start encrypting, or to rotate: set HERALD_SECRET_KEY to a new key (from `herald secrets
            generate-key`), list the previous key in HERALD_SECRET_KEYS_RETIRED on every process, then run
            `herald secrets rekey`. Once it reports no rows left, the retired key can be removed.
            """,
        subcommands: [GenerateKey.self, Rekey.self])

    struct GenerateKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate-key", abstract: "Print a new random key for HERALD_SECRET_KEY.")

        func run() {
            print(Base64.encode(randomBytes(count: 32)))
        }
    }

    struct Rekey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seal every endpoint secret and inbound source token and secret with HERALD_SECRET_KEY (plaintext ones and those of retired keys).")

        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let settings = try options.settings()
            guard settings.secretKeyring.current != nil else {
                throw ValidationError("HERALD_SECRET_KEY is not set: there is no key to seal the secrets with")
            }
            let logger = Logger(label: "herald.secrets")
            let pool = try Pool(url: settings.databaseURL, size: 1, applicationName: "herald-secrets", logger: logger)
            do {
                let count = try await Store(pool: pool, keyring: settings.secretKeyring).resealSecrets()
                let sources = try await InboundStore(pool: pool, keyring: settings.secretKeyring, publicURL: settings.publicURL, maxDataBytes: settings.maxDataBytes)
                    .resealSecrets()
                await pool.close()
                print("sealed \(count) endpoint(s) and \(sources) inbound source(s) with key \(settings.secretKeyring.current!.id)")
            } catch {
                await pool.close()
                throw error
            }
        }
    }
}

/// Says at start-up, once, that a database dump would reveal endpoint secrets.
func warnIfSecretsInPlaintext(_ settings: Settings, logger: Logger) {
    if settings.secretKeyring.current == nil {
        logger.warning("HERALD_SECRET_KEY is not set: endpoint secrets are stored in plaintext (see herald secrets --help)")
    }
}
