"""The pure parts: key layout, handles, identifiers, relpaths and URIs."""

from __future__ import annotations

import pytest

from dtool_s3_core._format.keys import (
    KeyLayout,
    decode_handle,
    encode_handle,
    identifier,
    json_names,
    normalise_prefix,
    parse_fragment_key,
    uses_base64_handles,
)
from dtool_s3_core._format.uri import parse_uri
from dtool_s3_core._format.validate import check_relpath
from dtool_s3_core.errors import ConfigurationError

# Measured values from dtool-s3 0.14.1 (format spec, section 3.2).
SPEC_ITEMS = [
    ("3857b672471862eab426eba0622e44bd2cedbd5d", "hello.txt", "aGVsbG8udHh0"),
    ("6cbac5642c4ee350f0b1265cee8aa16e1a6d1bb1", "big.bin", "YmlnLmJpbg=="),
    ("ad87109bfff0765f4dd8cf4943b04d16a4070fea", "empty", "ZW1wdHk="),
    (
        "b62a83fb580e05e59762732428b25543cefc1493",
        "sub/dir/with space.txt",
        "c3ViL2Rpci93aXRoIHNwYWNlLnR4dA==",
    ),
    ("bd0beb9bfba15325a601f6a7124a68e0c10954bd", "j\u00e4tte.txt", "asOkdHRlLnR4dA=="),
]


@pytest.mark.parametrize(("ident", "relpath", "handle"), SPEC_ITEMS)
def test_identifiers_and_handles_match_dtool_s3(ident: str, relpath: str, handle: str) -> None:
    assert identifier(relpath) == ident
    assert encode_handle(relpath) == handle
    assert decode_handle(handle, base64_handles=True) == relpath
    assert decode_handle(relpath, base64_handles=False) == relpath


@pytest.mark.parametrize(
    ("structure", "expected"),
    [
        ({"storage_broker_version": "0.14.1"}, True),
        ({"storage_broker_version": "0.14.0"}, True),
        ({"storage_broker_version": "0.13.2"}, False),
        ({"storage_broker_version": "1.0"}, True),
        ({}, False),
        (None, True),
    ],
)
def test_structure_version_decides_handle_encoding(structure: object, expected: bool) -> None:
    assert uses_base64_handles(structure) is expected  # type: ignore[arg-type]


def test_layout_concatenates_prefix_and_uuid_literally() -> None:
    uuid = "10f6e563-1a35-491b-9539-45c62f413e99"
    assert KeyLayout(uuid, "u/nos").admin_metadata == f"u/nos{uuid}/dtool"
    layout = KeyLayout(uuid, "u/tester/")
    assert layout.registration_key == f"dtool-{uuid}"
    assert layout.item("ab" * 20) == f"u/tester/{uuid}/data/{'ab' * 20}"
    assert layout.fragment("ab" * 20, "k.v") == f"u/tester/{uuid}/fragments/{'ab' * 20}.k.v.json"


def test_dotted_names_survive() -> None:
    assert parse_fragment_key("ab" * 20 + ".k.v.json") == ("ab" * 20, "k.v")
    assert parse_fragment_key("junk.json") is None
    assert json_names(["p/overlays/a.b.json", "p/overlays/c.json"], "p/overlays/") == ["a.b", "c"]


def test_prefix_normalisation() -> None:
    assert normalise_prefix("") == ""
    assert normalise_prefix("u/alice") == "u/alice/"
    assert normalise_prefix("u/alice/") == "u/alice/"


@pytest.mark.parametrize(
    "relpath",
    ["", "/etc/passwd", "a/../b", "..", "a//b", "./a", "line\nbreak", "tab\there", "x" * 1025],
)
def test_bad_relpaths_are_refused(relpath: str) -> None:
    with pytest.raises(ConfigurationError):
        check_relpath(relpath)


@pytest.mark.parametrize("relpath", ["a", "sub/dir/with space.txt", "j\u00e4tte.txt", "a.b.c"])
def test_good_relpaths_pass(relpath: str) -> None:
    check_relpath(relpath)


def test_uri_parsing() -> None:
    assert parse_uri("s3://bucket/1234").bucket == "bucket"
    assert parse_uri("s3://bucket/1234").uuid == "1234"
    assert parse_uri("s3://bucket").uuid == ""
    assert str(parse_uri("s3://bucket/")) == "s3://bucket"
    for bad in ["http://bucket/x", "s3://", "s3://a", "s3://bad bucket/x", "s3://b..b/x"]:
        with pytest.raises(ConfigurationError):
            parse_uri(bad)
