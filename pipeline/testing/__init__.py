"""Test infrastructure that ships with the package (tests, benchmarks and docs use it): a hostile web
server on loopback and a socket-connect audit. Nothing here is imported by the pipeline itself."""
