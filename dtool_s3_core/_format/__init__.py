"""Layer 1, pure: dtool-s3's on-bucket format (keys, URIs, manifests, checks); no I/O.

May import: the standard library, :mod:`dtool_s3_core.errors`, and dtoolcore's version number
(which a manifest records).
"""
