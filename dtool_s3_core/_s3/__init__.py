"""Layer 2, talking to S3: the one place that imports boto3, botocore and awscrt.

May import: :mod:`.._format`, :mod:`..config`, :mod:`..errors`.
"""
