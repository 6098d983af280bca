"""Apache Airflow provider for dtool datasets in S3 (hook, operators, sensor, trigger, Assets)."""

__version__ = "0.1.0"
