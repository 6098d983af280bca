"""Layer 4, operations on whole datasets: copy sources, copy to S3 or disk, verify.

May import: :mod:`.._dataset`, :mod:`.._s3`, :mod:`.._format`, :mod:`..config`, :mod:`..errors`.
"""
