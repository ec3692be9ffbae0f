"""Users, passwords, digest authentication, lockout, IP filter, TLS and the device key."""
