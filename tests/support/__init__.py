"""Loopback S3 servers, the counting/fault-injecting proxy and Ceph orchestration for tests, benchmarks and examples (not part of the wheel)."""
