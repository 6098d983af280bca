"""``dtool s3 doctor``: the settings that apply to a bucket, where they came from, and checks."""

from __future__ import annotations

import click


@click.command("doctor")
@click.option(
    "--write-test",
    is_flag=True,
    help=(
        "Also write and delete one object under the dataset prefix (and try its ACL), and send "
        "one through the item-body engine."
    ),
)
@click.argument("bucket_uri")
def doctor(write_test: bool, bucket_uri: str) -> None:
    """Show the resolved settings of BUCKET_URI (s3://bucket) and check that it works.

    Each setting is shown with its source (override, environment variable, dtool.json key,
    default, or the AWS chain with its profile); secrets are never shown. Settings that look
    meant for the bucket but do not apply to it (a near miss of its name or of a key) follow.
    Then each check prints one line, OK or the fix: which installed broker dtool's own commands
    use for s3:// (WARN if it is dtool-s3's), endpoint reachable, TLS, credentials accepted,
    bucket exists, listing allowed, writing allowed (--write-test), ACLs usable for 'dtool
    publish', and which engine carries item bodies (awscrt, or botocore and why; --write-test
    tries it). The exit status is 1 if a check fails.
    """
    # The S3 stack loads when a command runs, not when dtool starts.
    from .._format.uri import parse_uri
    from .._s3.probes import run_checks, settings_report
    from ._brokers import broker_check

    bucket = parse_uri(bucket_uri).bucket
    config, shown = settings_report(bucket)
    click.echo(f"Settings for s3://{bucket}:")
    width = max(len(s.name) for s in shown)
    value_width = min(40, max(len(s.value) for s in shown))
    for setting in shown:
        click.echo(f"  {setting.name:<{width}}  {setting.value:<{value_width}}  {setting.source}")
    if config.near_misses:
        click.echo("Near misses (settings that look meant for this bucket but do not apply):")
        for hint in config.near_misses:
            click.echo(f"  {hint}")
    click.echo("Checks:")
    # A fact of this install, not of the bucket: it comes before the bucket's checks.
    checks = [broker_check(), *run_checks(config, write_test)]
    for check in checks:
        click.echo(f"  {check.status:<4} {check.name:<11} {check.text}")
    if any(check.failed for check in checks):
        raise SystemExit(1)
