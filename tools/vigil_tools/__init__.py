"""Host-side tools for Vigil devices: the `vigil` command line (discover, activate, set-network)."""
