"""Platform adapters: they translate platform traffic to core events and core Content to native output."""
