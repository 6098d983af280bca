"""Loopback S3 servers, the counting and fault-injecting proxy, and Ceph orchestration.

For the tests, the benchmarks and the examples; none of it is part of the wheel.
"""
