"""Run tap-quickbooks 2.5.0 against the simulator, from the tap's own virtual environment.

The tap hard-codes Intuit's hosts as module constants and has no setting for them, so
this script (executed by ``benchmarks/.venv-tap/bin/python``, never imported by the
service) sets those constants and then calls the tap's unmodified ``main()``.

    python tap_runner.py BASE_URL catalog OUT      write a catalog selecting customers + invoices
    python tap_runner.py BASE_URL sync -- ARGS     run the tap (its own --config/--catalog flags)

It imports only the standard library and the tap.
"""
import json
import os
import sys

SELECTED_STREAMS = ("customers", "invoices")


def point_at(base_url):
    """Send the tap's API and token calls to base_url instead of Intuit."""
    import tap_quickbooks.client as client

    client.PROD_ENDPOINT_BASE = base_url
    client.SANDBOX_ENDPOINT_BASE = base_url
    client.TOKEN_REFRESH_URL = base_url + "/oauth2/v1/tokens/bearer"
    # requests-oauthlib refuses plain http; the simulator listens on loopback only.
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


def write_catalog(path):
    """Run the tap's discovery (offline: schemas only) and select the two streams."""
    from tap_quickbooks.discover import do_discover

    catalog = do_discover().to_dict()
    for stream in catalog["streams"]:
        chosen = stream["tap_stream_id"] in SELECTED_STREAMS
        stream["selected"] = chosen
        for entry in stream["metadata"]:
            if not list(entry["breadcrumb"]):  # () before JSON, [] after
                entry["metadata"]["selected"] = chosen
    catalog["streams"] = [s for s in catalog["streams"] if s["tap_stream_id"] in SELECTED_STREAMS]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(catalog, f)


def main(argv):
    base_url, command = argv[0], argv[1]
    point_at(base_url)
    if command == "catalog":
        write_catalog(argv[2])
        return
    if command == "sync":
        from tap_quickbooks import main as tap_main

        sys.argv = ["tap-quickbooks", *argv[3:]] if argv[2:3] == ["--"] else ["tap-quickbooks", *argv[2:]]
        tap_main()
        return
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
