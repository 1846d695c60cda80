"""Tools for the tests and benchmarks: nothing here runs in a deployed bot."""
