#!/usr/bin/python3
"""Checks the answers the integration suites received against the OpenAPI document.

The test harness (tests/integration/harness.cpp) appends every answer it gets through
request()/Conn::request() to contract-<pid>.jsonl files in a folder; this script reads them all
and checks each against web/openapi.json: the route's operation lists the status, the content
type is one the document gives for it, and a JSON body validates against the response's schema
(JSON Schema 2020-12, by python3-jsonschema). Answers to paths no route serves must still have
the error shape. Prints what was covered; exits 1 on any mismatch, naming the test that saw it.

usage: check_responses.py OPENAPI_JSON RECORD_DIR
"""
import collections
import glob
import json
import os
import re
import sys

import jsonschema

METHODS = ("get", "post", "put", "patch", "delete")


def main():
    spec_path, record_dir = sys.argv[1], sys.argv[2]
    spec = json.load(open(spec_path))
    resolver = jsonschema.RefResolver.from_schema(spec)

    def resolve(obj):
        while isinstance(obj, dict) and "$ref" in obj:
            _, obj = resolver.resolve(obj["$ref"])
        return obj

    def validate(schema, instance):
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        errors = sorted(cls(schema, resolver=resolver).iter_errors(instance), key=lambda e: list(e.path))
        return errors

    # Path templates, literal segments before parameters (/docs/openapi.json-like clashes).
    routes = []
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        routes.append((template.count("{"), template, re.compile(pattern), item))
    routes.sort(key=lambda r: r[0])
    error_schema = {"$ref": "#/components/schemas/Error"}

    records = []
    for f in sorted(glob.glob(os.path.join(record_dir, "contract-*.jsonl"))):
        with open(f, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    records.append(json.loads(line))
    if not records:
        print("no answers were recorded (did the integration suites run with CREATORD_CONTRACT_DIR?)")
        return 1

    failures = collections.OrderedDict()
    covered = collections.Counter()
    unrouted = 0

    def fail(key, test, message):
        if key not in failures:
            failures[key] = [0, test, message]
        failures[key][0] += 1

    for rec in records:
        method = rec["method"].lower()
        path = rec["target"].split("?", 1)[0]
        status = rec["status"]
        ctype = rec.get("content_type", "").split(";")[0].strip().lower()
        body = rec.get("body")
        test = rec.get("test", "")
        route = next((r for r in routes if r[2].match(path)), None)
        if route is None or method == "options":
            # No route (or a CORS preflight): an error must still have the error shape.
            unrouted += 1
            if status >= 400 and ctype == "application/json" and body:
                try:
                    errs = validate(error_schema, json.loads(body))
                except ValueError:
                    errs = ["not JSON"]
                if errs:
                    fail(("(no route)", status, "error shape"), test, f"{rec['method']} {path}: {errs[0]}")
            continue
        _, template, _, item = route
        op = item.get("head" if method == "head" and "head" in item else ("get" if method == "head" else method))
        if op is None:
            if status != 405:
                fail((rec["method"], template, status, "method"), test,
                     f"{rec['method']} {template} has no operation but answered {status}")
            continue
        responses = op.get("responses", {})
        resp = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if resp is None:
            fail((rec["method"], template, status, "status"), test,
                 f"{rec['method']} {template} answered {status}, which the document does not list")
            continue
        covered[("GET" if method == "head" else rec["method"].upper(), template, status)] += 1
        resp = resolve(resp)
        content = resp.get("content") or {}
        if method == "head" or status in (204, 304):
            continue
        if not content:
            if body:
                fail((rec["method"], template, status, "body"), test,
                     f"{rec['method']} {template} {status}: a body ({ctype}) where the document gives none")
            continue
        media = content.get(ctype)
        if media is None:
            media = next((m for k, m in content.items()
                          if k == "*/*" or (k.endswith("/*") and ctype.startswith(k[:-1]))), None)
        if media is None:
            fail((rec["method"], template, status, "content-type " + ctype), test,
                 f"{rec['method']} {template} {status}: content type {ctype!r}, document gives {sorted(content)}")
            continue
        if ctype != "application/json" or "schema" not in media or body is None:
            continue
        try:
            instance = json.loads(body)
        except ValueError as e:
            fail((rec["method"], template, status, "json"), test, f"{rec['method']} {template} {status}: not JSON: {e}")
            continue
        errs = validate(media["schema"], instance)
        if errs:
            e = errs[0]
            where = "/".join(str(p) for p in e.absolute_path) or "(root)"
            fail((rec["method"], template, status, "schema " + where), test,
                 f"{rec['method']} {template} {status}: at {where}: {e.message[:300]}")

    operations = {(m.upper(), t) for _, t, _, item in routes for m in item if m in METHODS}
    seen_ops = {(m, t) for (m, t, _) in covered}
    print(f"{len(records)} answers checked: {len(seen_ops)} of {len(operations)} operations and "
          f"{len(covered)} (operation, status) pairs seen; {unrouted} to paths no route serves")
    missing = sorted(operations - seen_ops)
    if missing:
        print("operations no suite called:", ", ".join(f"{m} {t}" for m, t in missing))
    if failures:
        print(f"\n{len(failures)} mismatches between the answers and {spec_path}:")
        for key, (count, test, message) in failures.items():
            print(f"- {message}  [{count}x, e.g. in {test}]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
