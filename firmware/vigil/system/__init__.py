"""System services: identity, device log, time, network, power."""
