"""Layer 3, one dataset in one bucket: reads and writes of the format, registry, transfers.

May import: :mod:`.._s3`, :mod:`.._format`, :mod:`..config`, :mod:`..errors`.
"""
