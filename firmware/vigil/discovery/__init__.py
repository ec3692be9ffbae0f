"""Being found on the LAN: the SADP-style responder, mDNS."""
