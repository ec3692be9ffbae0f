"""Hardware abstraction: one module per kind of hardware, each with a Linux and a sim driver."""
