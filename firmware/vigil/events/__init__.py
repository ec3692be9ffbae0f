"""Events: the bus, detectors, alarm I/O, exceptions, rules and their linkage actions."""
