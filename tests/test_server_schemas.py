"""The schemas shipped in deriv_sdk/testing/schemas: both APIs, complete, all package data."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import deriv_sdk.testing
from deriv_sdk.testing import validation

PACKAGE = Path(deriv_sdk.testing.__file__).parent
SCHEMAS = PACKAGE / "schemas"
SETUP_CFG = PACKAGE.parent.parent / "setup.cfg"


def test_v3_has_every_call_with_send_receive_example() -> None:
    calls = sorted(p.name for p in (SCHEMAS / "v3").iterdir())
    assert len(calls) == 137
    for call in calls:
        names = sorted(p.name for p in (SCHEMAS / "v3" / call).iterdir())
        assert names == ["example.json", "receive.json", "send.json"], call
    assert {"ping", "authorize", "proposal", "website_status"} <= set(calls)


def test_options_has_the_95_official_files() -> None:
    files = sorted(p.name for p in (SCHEMAS / "options").iterdir())
    assert len(files) == 95
    assert "rest-api-openapi.json" in files
    calls = {f[: -len("_request.schema.json")] for f in files if f.endswith("_request.schema.json")}
    assert validation.IMPLEMENTED[validation.OPTIONS] <= calls
    for name in files:
        json.loads((SCHEMAS / "options" / name).read_text("utf-8"))  # every file is JSON


def test_no_other_schema_files() -> None:
    assert sorted(p.name for p in SCHEMAS.iterdir()) == ["options", "v3"]


def test_package_data_covers_every_schema_file() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    patterns = cfg["options.package_data"]["deriv_sdk.testing"].split()
    covered = {p for pattern in patterns for p in PACKAGE.glob(pattern)}
    files = {p for p in SCHEMAS.rglob("*") if p.is_file()}
    assert len(files) == 137 * 3 + 95
    assert files <= covered, sorted(str(p) for p in files - covered)[:5]


def test_implemented_calls_have_loadable_request_schemas() -> None:
    for api, calls in validation.IMPLEMENTED.items():
        for call in calls:
            schema = validation.request_schema(api, call)
            assert schema["type"] == "object", (api, call)
            assert "auth_required" in schema, (api, call)
