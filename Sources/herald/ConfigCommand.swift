import ArgumentParser
import Foundation
import Settings

/// `herald config`: what this process would run with, and why.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show every setting's effective value and where it came from (default, file, environment, flag); secrets masked.")

    @OptionGroup var global: GlobalOptions
    @Flag(help: "One JSON object per setting, in an array.") var json = false

    func run() throws {
        // The same checks a server makes: a value that would not start it is an error here too.
        _ = try global.settings()
        let environment = ProcessInfo.processInfo.environment
        let overrides = try global.overrides()
        let settings = Settings.effective(
            environment: environment, file: try ConfigFile.values(environment: environment, overrides: overrides), overrides: overrides)
        if json {
            let objects = settings.map { ["name": $0.key.rawValue, "value": $0.value, "source": $0.source.rawValue] }
            let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let width = settings.map(\.key.rawValue.count).max() ?? 0
        for setting in settings {
            let name = setting.key.rawValue + String(repeating: " ", count: width - setting.key.rawValue.count)
            print("\(name)  \(setting.value.isEmpty ? "(unset)" : setting.value)  [\(setting.source.rawValue)]")
        }
    }
}
