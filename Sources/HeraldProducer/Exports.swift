// A CRM writes `import HeraldProducer` and has the event types it publishes with.
@_exported public import HeraldEvents
