"""Built-in provider connectors, one module per provider. Imported lazily by the registry."""
