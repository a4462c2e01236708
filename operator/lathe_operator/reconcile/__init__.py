"""Pure reconcilers: (resource, observed state) -> Plan. No kopf, no clients, no I/O."""
