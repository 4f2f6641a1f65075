#!/usr/bin/python3
"""Checks Ijazat's HTTPS API against docs/openapi.yaml, its contract.

    openapi_contract.py SPEC                         the document alone
    openapi_contract.py SPEC EXCHANGES [--require-all-operations]

The document is checked first: OpenAPI 3.1 structure (the fixed fields of each object, so a
stray key such as the second half of an unquoted "a, b" in a flow mapping fails), no duplicate
YAML keys, an operationId (camelCase, unique) on every operation, a description on every
response, explicit three-digit statuses only, every $ref resolving to the right kind of
object, every schema valid under JSON Schema 2020-12 (and its examples valid under it), every
path template's parameters declared, every problem response listing the reasons (`title`) it
can carry.

EXCHANGES is a JSON file the contract test writes: {"exchanges": [{"note", "method", "path",
"template", "status", "content_type", "headers", "body"}, ...]}, one per real request to the
appliance. `template` is the document's path template the request was meant for, or null for
a path the document does not have. Each exchange must be documented: its status among the
operation's responses, its Content-Type one of that response's media types, its body valid
against that media type's schema, its `title` among the reasons listed for that status, its
required headers present. With --require-all-operations every operation in the document must
have been exercised at least once.

Only the Python standard library, python3-yaml and python3-jsonschema (Debian 12: 4.10) are
used. Exit status: 0 when everything holds, 1 when the document or an exchange breaks the
contract, 2 when the script cannot run (bad arguments, unreadable files).
"""

import json
import re
import sys
import urllib.parse

try:
    import jsonschema
    import yaml
    from jsonschema import Draft202012Validator, RefResolver
except ImportError as missing:  # not a contract failure: the machine lacks a package
    print("openapi_contract.py: %s (install python3-yaml and python3-jsonschema)" % missing,
          file=sys.stderr)
    sys.exit(2)

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROBLEM_MEDIA = "application/problem+json"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class UsageError(Exception):
    pass


# --- Loading ---------------------------------------------------------------------------------


class StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys and merge keys (JSON has neither)."""


def _construct_mapping(loader, node, deep=False):
    mapping = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise yaml.constructor.ConstructorError(
                None, None, "merge keys (<<) are not allowed", key_node.start_mark
            )
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key is not a scalar", key_node.start_mark
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "duplicate key %r" % (key,),
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_spec(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (StrictLoader is a SafeLoader)


def json_types_only(value, where, problems):
    """YAML can hold what JSON cannot (dates, integer keys): the document must be JSON."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append("%s: key %r is not a string (quote it)" % (where, key))
            json_types_only(item, "%s/%s" % (where, key), problems)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            json_types_only(item, "%s/%d" % (where, i), problems)
    elif not (value is None or isinstance(value, (str, bool, int, float))):
        problems.append("%s: %r is not a JSON value (quote it)" % (where, value))


# --- The structure of an OpenAPI 3.1 document (the objects this project may use) ----------------

_EXT = {"^x-": True}


def _obj(properties, required=(), **extra):
    schema = {
        "type": "object",
        "properties": properties,
        "patternProperties": _EXT,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_ANY_OBJ = {"type": "object"}


def _or_ref(name):
    return {
        "if": {"type": "object", "required": ["$ref"]},
        "then": {"$ref": "#/$defs/reference"},
        "else": {"$ref": "#/$defs/" + name},
    }


OPENAPI_31 = {
    "$schema": SCHEMA_DIALECT,
    "$defs": {
        "reference": {
            "type": "object",
            "required": ["$ref"],
            "properties": {"$ref": _STR, "summary": _STR, "description": _STR},
            "additionalProperties": False,
        },
        "schema": {"type": ["object", "boolean"]},
        "info": _obj(
            {
                "title": _STR,
                "summary": _STR,
                "description": _STR,
                "termsOfService": _STR,
                "contact": _ANY_OBJ,
                "license": _ANY_OBJ,
                "version": _STR,
            },
            ["title", "version"],
        ),
        "server": _obj(
            {"url": _STR, "description": _STR, "variables": _ANY_OBJ}, ["url"]
        ),
        "servers": {"type": "array", "items": {"$ref": "#/$defs/server"}},
        "paths": {
            "type": "object",
            "patternProperties": {"^/": {"$ref": "#/$defs/pathItem"}, "^x-": True},
            "additionalProperties": False,
        },
        "parameters": {"type": "array", "items": _or_ref("parameter")},
        "pathItem": _obj(
            dict(
                {
                    "$ref": _STR,
                    "summary": _STR,
                    "description": _STR,
                    "servers": {"$ref": "#/$defs/servers"},
                    "parameters": {"$ref": "#/$defs/parameters"},
                    "x-ijazat-other-methods": {"$ref": "#/$defs/responses"},
                },
                **{m: {"$ref": "#/$defs/operation"} for m in HTTP_METHODS},
            )
        ),
        "operation": _obj(
            {
                "tags": {"type": "array", "items": _STR},
                "summary": _STR,
                "description": _STR,
                "externalDocs": _ANY_OBJ,
                "operationId": _STR,
                "parameters": {"$ref": "#/$defs/parameters"},
                "requestBody": _or_ref("requestBody"),
                "responses": {"$ref": "#/$defs/responses"},
                "callbacks": _ANY_OBJ,
                "deprecated": _BOOL,
                "security": {"$ref": "#/$defs/security"},
                "servers": {"$ref": "#/$defs/servers"},
            },
            ["responses"],
        ),
        # Stricter than OpenAPI: no "default" and no "4XX" ranges, so that every status the
        # appliance gives is named.
        "responses": {
            "type": "object",
            "minProperties": 1,
            "patternProperties": {"^[1-5][0-9][0-9]$": _or_ref("response"), "^x-": True},
            "additionalProperties": False,
        },
        "response": _obj(
            {
                "description": _STR,
                "headers": {"type": "object", "additionalProperties": _or_ref("header")},
                "content": {"$ref": "#/$defs/content"},
                "links": _ANY_OBJ,
            },
            ["description"],
        ),
        "content": {"type": "object", "additionalProperties": {"$ref": "#/$defs/mediaType"}},
        "mediaType": _obj(
            {
                "schema": {"$ref": "#/$defs/schema"},
                "example": True,
                "examples": _ANY_OBJ,
                "encoding": _ANY_OBJ,
            }
        ),
        "header": _obj(
            {
                "description": _STR,
                "required": _BOOL,
                "deprecated": _BOOL,
                "style": _STR,
                "explode": _BOOL,
                "schema": {"$ref": "#/$defs/schema"},
                "content": {"$ref": "#/$defs/content"},
                "example": True,
                "examples": _ANY_OBJ,
            }
        ),
        "parameter": _obj(
            {
                "name": _STR,
                "in": {"enum": ["query", "header", "path", "cookie"]},
                "description": _STR,
                "required": _BOOL,
                "deprecated": _BOOL,
                "allowEmptyValue": _BOOL,
                "style": _STR,
                "explode": _BOOL,
                "allowReserved": _BOOL,
                "schema": {"$ref": "#/$defs/schema"},
                "content": {"$ref": "#/$defs/content"},
                "example": True,
                "examples": _ANY_OBJ,
            },
            ["name", "in"],
            **{
                "if": {"properties": {"in": {"const": "path"}}, "required": ["in"]},
                "then": {"required": ["required"], "properties": {"required": {"const": True}}},
            },
        ),
        "requestBody": _obj(
            {"description": _STR, "content": {"$ref": "#/$defs/content"}, "required": _BOOL},
            ["content"],
        ),
        "securityScheme": _obj(
            {
                "type": {"enum": ["apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"]},
                "description": _STR,
                "name": _STR,
                "in": {"enum": ["query", "header", "cookie"]},
                "scheme": _STR,
                "bearerFormat": _STR,
                "flows": _ANY_OBJ,
                "openIdConnectUrl": _STR,
            },
            ["type"],
            allOf=[
                {
                    "if": {"properties": {"type": {"const": "apiKey"}}},
                    "then": {"required": ["name", "in"]},
                },
                {
                    "if": {"properties": {"type": {"const": "http"}}},
                    "then": {"required": ["scheme"]},
                },
            ],
        ),
        "security": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": {"type": "array", "items": _STR}},
        },
        "components": _obj(
            {
                "schemas": {"type": "object", "additionalProperties": {"$ref": "#/$defs/schema"}},
                "responses": {"type": "object", "additionalProperties": _or_ref("response")},
                "parameters": {"type": "object", "additionalProperties": _or_ref("parameter")},
                "examples": _ANY_OBJ,
                "requestBodies": {
                    "type": "object",
                    "additionalProperties": _or_ref("requestBody"),
                },
                "headers": {"type": "object", "additionalProperties": _or_ref("header")},
                "securitySchemes": {
                    "type": "object",
                    "additionalProperties": _or_ref("securityScheme"),
                },
                "links": _ANY_OBJ,
                "callbacks": _ANY_OBJ,
                "pathItems": _ANY_OBJ,
            }
        ),
    },
    "type": "object",
    "required": ["openapi", "info"],
    "anyOf": [{"required": ["paths"]}, {"required": ["components"]}, {"required": ["webhooks"]}],
    "properties": {
        "openapi": {"type": "string", "pattern": r"^3\.1\.[0-9]+$"},
        "info": {"$ref": "#/$defs/info"},
        "jsonSchemaDialect": {"const": SCHEMA_DIALECT},
        "servers": {"$ref": "#/$defs/servers"},
        "paths": {"$ref": "#/$defs/paths"},
        "webhooks": _ANY_OBJ,
        "components": {"$ref": "#/$defs/components"},
        "security": {"$ref": "#/$defs/security"},
        "tags": {"type": "array"},
        "externalDocs": _ANY_OBJ,
        "x-ijazat-unknown-paths": {"$ref": "#/$defs/responses"},
    },
    "patternProperties": _EXT,
    "additionalProperties": False,
}


# --- Helpers over the document -----------------------------------------------------------------


def pointer_get(document, ref):
    """Resolves a local reference ("#/a/b") in `document`; raises KeyError."""
    if not ref.startswith("#"):
        raise KeyError("only references inside the document are allowed: " + ref)
    node = document
    fragment = urllib.parse.unquote(ref[1:])
    if fragment == "":
        return node
    if not fragment.startswith("/"):
        raise KeyError("not a JSON pointer: " + ref)
    for token in fragment[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise KeyError("does not resolve: " + ref)
    return node


def deref(spec, node, kind=None):
    """A Reference Object's target (followed through chains), else the node itself."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node and set(node) <= {"$ref", "summary", "description"}:
        ref = node["$ref"]
        if ref in seen:
            raise KeyError("reference cycle at " + ref)
        seen.add(ref)
        if kind is not None and not ref.startswith("#/components/%s/" % kind):
            raise KeyError("%s should point into #/components/%s/" % (ref, kind))
        node = pointer_get(spec, ref)
    return node


def operations(spec):
    """(template, method, path item, operation) for every operation."""
    for template, item in (spec.get("paths") or {}).items():
        if not template.startswith("/") or not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            if isinstance(item.get(method), dict):
                yield template, method, item, item[method]


def response_maps(spec):
    """(where, responses object) for every Responses Object, the extensions' included."""
    if isinstance(spec.get("x-ijazat-unknown-paths"), dict):
        yield "x-ijazat-unknown-paths", spec["x-ijazat-unknown-paths"]
    for template, item in (spec.get("paths") or {}).items():
        if isinstance(item, dict) and isinstance(item.get("x-ijazat-other-methods"), dict):
            yield "%s x-ijazat-other-methods" % template, item["x-ijazat-other-methods"]
    for template, method, _, op in operations(spec):
        if isinstance(op.get("responses"), dict):
            yield "%s %s" % (method.upper(), template), op["responses"]


def parse_media_type(text):
    """("type/subtype", {param: value}) with the type and parameter names in lower case."""
    parts = [p.strip() for p in (text or "").split(";")]
    essence = parts[0].lower()
    params = {}
    for part in parts[1:]:
        if "=" in part:
            name, value = part.split("=", 1)
            params[name.strip().lower()] = value.strip().strip('"')
    return essence, params


def is_json_media(essence):
    return essence == "application/json" or essence.endswith("+json")


def title_reasons(spec, schema, depth=0):
    """The reasons a problem schema lists for `title` (enum or const), through $ref and allOf;
    None when it lists none."""
    if depth > 20 or not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        try:
            target = pointer_get(spec, schema["$ref"])
        except KeyError:
            return None
        found = title_reasons(spec, target, depth + 1)
        if found is not None:
            return found
    reasons = None
    title = (schema.get("properties") or {}).get("title")
    if isinstance(title, dict):
        if isinstance(title.get("enum"), list):
            reasons = set(title["enum"])
        elif "const" in title:
            reasons = {title["const"]}
    for sub in schema.get("allOf") or []:
        found = title_reasons(spec, sub, depth + 1)
        if found is not None:
            reasons = found if reasons is None else reasons & found
    return reasons


def validator_for(spec, schema):
    resolver = RefResolver.from_schema(spec, id_of=lambda _: "")
    return Draft202012Validator(schema, resolver=resolver)


def short(value, limit=160):
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def schema_errors(spec, schema, instance):
    errors = sorted(
        validator_for(spec, schema).iter_errors(instance), key=lambda e: list(e.absolute_path)
    )
    out = []
    for error in errors[:5]:
        where = "/".join(str(p) for p in error.absolute_path) or "(body)"
        best = jsonschema.exceptions.best_match([error]) or error
        message = best.message
        if len(message) > 240:
            message = message[:237] + "..."
        out.append("%s: %s" % (where, message))
    return out


# --- The document ------------------------------------------------------------------------------


def check_document(spec):
    problems = []
    if not isinstance(spec, dict):
        return ["the document is not a mapping"]
    json_types_only(spec, "", problems)
    if problems:
        return problems

    for error in sorted(
        Draft202012Validator(OPENAPI_31).iter_errors(spec), key=lambda e: list(e.absolute_path)
    ):
        where = "/" + "/".join(str(p) for p in error.absolute_path)
        best = jsonschema.exceptions.best_match([error]) or error
        message = best.message
        if best.validator == "additionalProperties" and isinstance(best.instance, dict):
            known = set((best.schema.get("properties") or {}).keys())
            unknown = sorted(k for k in best.instance if k not in known and not k.startswith("x-"))
            message = "unknown field(s) %s; this object takes: %s" % (
                ", ".join(repr(k) for k in unknown), ", ".join(sorted(known)) or "(none)")
        problems.append("structure %s: %s" % (where, message))
    if problems:
        return problems  # the checks below assume the structure

    # Every $ref resolves, inside the document.
    def walk(node, where):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    pointer_get(spec, ref)
                except KeyError as e:
                    problems.append("%s: $ref %s" % (where, e.args[0]))
            for key, value in node.items():
                walk(value, "%s/%s" % (where, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, "%s/%d" % (where, i))

    walk(spec, "")
    if problems:
        return problems

    # Operations: an operationId each, camelCase, unique; security schemes defined; path
    # parameters declared both ways.
    schemes = set(((spec.get("components") or {}).get("securitySchemes") or {}).keys())
    ids = {}
    for requirement in spec.get("security") or []:
        for name in requirement:
            if name not in schemes:
                problems.append("security: no security scheme %r" % name)
    for template, method, item, op in operations(spec):
        where = "%s %s" % (method.upper(), template)
        op_id = op.get("operationId")
        if not op_id:
            problems.append("%s: no operationId" % where)
        elif not re.fullmatch(r"[a-z][a-zA-Z0-9]*", op_id):
            problems.append("%s: operationId %r is not camelCase" % (where, op_id))
        elif op_id in ids:
            problems.append("%s: operationId %r is also %s" % (where, op_id, ids[op_id]))
        else:
            ids[op_id] = where
        for requirement in op.get("security") or []:
            for name in requirement:
                if name not in schemes:
                    problems.append("%s: no security scheme %r" % (where, name))
        declared = set()
        for parameter in list(item.get("parameters") or []) + list(op.get("parameters") or []):
            try:
                parameter = deref(spec, parameter, "parameters")
            except KeyError as e:
                problems.append("%s: parameter %s" % (where, e.args[0]))
                continue
            if parameter.get("in") == "path":
                declared.add(parameter.get("name"))
        in_template = set(re.findall(r"\{([^}/]+)\}", template))
        for name in sorted(in_template - declared):
            problems.append("%s: path parameter {%s} is not declared" % (where, name))
        for name in sorted(declared - in_template):
            problems.append("%s: path parameter %r is not in the template" % (where, name))
        body = op.get("requestBody")
        if body is not None:
            try:
                deref(spec, body, "requestBodies")
            except KeyError as e:
                problems.append("%s: requestBody %s" % (where, e.args[0]))

    # Every schema is valid JSON Schema 2020-12; its examples validate against it.
    schemas = []
    for name, schema in ((spec.get("components") or {}).get("schemas") or {}).items():
        schemas.append(("components/schemas/" + name, schema))

    def media_schemas(content, where):
        for media, media_object in (content or {}).items():
            if "schema" in media_object:
                schemas.append(("%s %s" % (where, media), media_object["schema"]))

    def header_schemas(headers, where):
        for name, header in (headers or {}).items():
            try:
                header = deref(spec, header, "headers")
            except KeyError as e:
                problems.append("%s header %s: %s" % (where, name, e.args[0]))
                continue
            if "schema" in header:
                schemas.append(("%s header %s" % (where, name), header["schema"]))

    components = spec.get("components") or {}
    for name, parameter in (components.get("parameters") or {}).items():
        if "schema" in parameter:
            schemas.append(("components/parameters/" + name, parameter["schema"]))
    header_schemas(components.get("headers"), "components/headers")
    for template, method, item, op in operations(spec):
        where = "%s %s" % (method.upper(), template)
        for parameter in list(item.get("parameters") or []) + list(op.get("parameters") or []):
            if "$ref" not in parameter and "schema" in parameter:
                schemas.append(("%s parameter %s" % (where, parameter["name"]), parameter["schema"]))
        body = op.get("requestBody")
        if isinstance(body, dict) and "$ref" not in body:
            media_schemas(body.get("content"), where + " request")

    for where, responses in response_maps(spec):
        for status, response in responses.items():
            if status.startswith("x-"):
                continue
            try:
                response = deref(spec, response, "responses")
            except KeyError as e:
                problems.append("%s %s: %s" % (where, status, e.args[0]))
                continue
            if not response.get("description"):
                problems.append("%s %s: no description" % (where, status))
            header_schemas(response.get("headers"), "%s %s" % (where, status))
            media_schemas(response.get("content"), "%s %s" % (where, status))
            for media, media_object in (response.get("content") or {}).items():
                if parse_media_type(media)[0] != PROBLEM_MEDIA:
                    continue
                reasons = title_reasons(spec, media_object.get("schema"))
                if not reasons:
                    problems.append(
                        "%s %s: the problem response lists no reasons (an enum on title)"
                        % (where, status)
                    )
                elif any(not re.fullmatch(r"[a-z][a-z_]*", r) for r in map(str, reasons)):
                    problems.append("%s %s: a reason is not a snake_case tag" % (where, status))
                if int(status) < 400:
                    problems.append("%s %s: a problem for a success status" % (where, status))

    seen = set()
    for where, schema in schemas:
        key = id(schema)
        if key in seen:
            continue
        seen.add(key)
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            problems.append("%s: not a valid JSON Schema 2020-12: %s" % (where, e.message))
            continue
        examples = schema.get("examples") if isinstance(schema, dict) else None
        for example in examples or []:
            for error in schema_errors(spec, schema, example):
                problems.append("%s: example %s: %s" % (where, short(example), error))
    return problems


# --- The exchanges -----------------------------------------------------------------------------


def template_regex(template):
    pattern = ""
    for piece in re.split(r"(\{[^}/]+\})", template):
        pattern += "[^/]+" if piece.startswith("{") else re.escape(piece)
    return re.compile(pattern + r"\Z")


def check_exchange(spec, exchange, covered):
    """Problems with one exchange; records the operation it exercised in `covered`."""
    method = str(exchange.get("method", "")).lower()
    path = str(exchange.get("path", ""))
    template = exchange.get("template")
    status = exchange.get("status")
    paths = spec.get("paths") or {}
    if not isinstance(status, int):
        return ["no status recorded"]

    if template is None:
        matching = [t for t in paths if t.startswith("/") and template_regex(t).match(path)]
        if matching:
            return ["recorded as an unknown path, but the document has %s" % matching[0]]
        responses = spec.get("x-ijazat-unknown-paths")
        if not isinstance(responses, dict):
            return ["a path outside the document, and the document has no x-ijazat-unknown-paths"]
        where = "unknown path"
    else:
        if template not in paths:
            return ["the document has no path %s" % template]
        if not template_regex(template).match(path):
            return ["the path %s is not an instance of %s" % (path, template)]
        item = paths[template]
        if isinstance(item.get(method), dict):
            op = item[method]
            covered.add(op.get("operationId"))
            responses = op.get("responses") or {}
            where = op.get("operationId")
        elif isinstance(item.get("x-ijazat-other-methods"), dict):
            responses = item["x-ijazat-other-methods"]
            where = "%s, another method" % template
        else:
            return ["%s %s is not documented (no operation, no x-ijazat-other-methods)"
                    % (method.upper(), template)]

    key = str(status)
    if key not in responses:
        documented = ", ".join(sorted(k for k in responses if not k.startswith("x-")))
        return ["status %d is not documented for %s (documented: %s)" % (status, where, documented)]
    response = deref(spec, responses[key], "responses")
    problems = []

    headers = exchange.get("headers")
    if isinstance(headers, dict):
        lower = {str(k).lower(): v for k, v in headers.items()}
        for name, header in (response.get("headers") or {}).items():
            header = deref(spec, header, "headers")
            value = lower.get(name.lower())
            if value is None:
                if header.get("required"):
                    problems.append("header %s is required and missing" % name)
                continue
            if "schema" in header:
                for error in schema_errors(spec, header["schema"], value):
                    problems.append("header %s %s: %s" % (name, short(value), error))

    body = exchange.get("body") or ""
    content_type = exchange.get("content_type") or ""
    content = response.get("content")
    if not content:
        if body:
            problems.append("the response documents no body, but one came")
        return problems
    if not content_type:
        problems.append("no Content-Type, documented: %s" % ", ".join(content))
        return problems
    essence, params = parse_media_type(content_type)
    chosen = None
    for media in content:
        doc_essence, doc_params = parse_media_type(media)
        if doc_essence != essence or any(params.get(k) != v for k, v in doc_params.items()):
            continue
        if chosen is None or len(doc_params) > len(parse_media_type(chosen)[1]):
            chosen = media
    if chosen is None:
        problems.append("Content-Type %s is not documented (documented: %s)"
                        % (content_type, ", ".join(content)))
        return problems
    schema = content[chosen].get("schema")
    if is_json_media(essence):
        try:
            instance = json.loads(body)
        except ValueError:
            problems.append("the body is not JSON: %s" % short(body))
            return problems
    else:
        instance = body
    if schema is not None:
        problems.extend("body %s" % e for e in schema_errors(spec, schema, instance))
    if essence == PROBLEM_MEDIA and isinstance(instance, dict):
        title = instance.get("title")
        reasons = title_reasons(spec, schema)
        if reasons is not None and title not in reasons:
            problems.append("title %r is not a reason documented for %d (documented: %s)"
                            % (title, status, ", ".join(sorted(reasons))))
        if instance.get("status") != status:
            problems.append("the problem's status %r is not the HTTP status %d"
                            % (instance.get("status"), status))
        if isinstance(title, str) and instance.get("type") != "urn:ijazat:problem:" + title:
            problems.append("the problem's type %r does not name its title" % instance.get("type"))
    return problems


def check_exchanges(spec, exchanges, require_all):
    covered = set()
    failures = 0
    exercised = {}
    for i, exchange in enumerate(exchanges):
        try:
            problems = check_exchange(spec, exchange, covered)
        except KeyError as e:
            problems = ["the document: %s" % e.args[0]]
        template = exchange.get("template")
        label = "%-6s %-28s %3s" % (
            str(exchange.get("method", "?")).upper(),
            template if template is not None else "(unknown) " + str(exchange.get("path")),
            exchange.get("status"),
        )
        title = ""
        try:
            parsed = json.loads(exchange.get("body") or "null")
            if isinstance(parsed, dict) and isinstance(parsed.get("title"), str):
                title = parsed["title"]
        except ValueError:
            pass
        note = exchange.get("note", "")
        if problems:
            failures += 1
            print("FAIL %3d %s %-26s %s" % (i + 1, label, title, note))
            for problem in problems:
                print("           - " + problem)
        else:
            print("ok   %3d %s %-26s %s" % (i + 1, label, title, note))
            key = (template, str(exchange.get("method", "")).lower())
            exercised.setdefault(key, set()).add(str(exchange.get("status")))

    all_ids = {op.get("operationId"): (t, m) for t, m, _, op in operations(spec)}
    print()
    print("Operations and the documented statuses the exchanges exercised:")
    for op_id, (template, method) in sorted(all_ids.items(), key=lambda kv: kv[1]):
        documented = sorted(k for k in spec["paths"][template][method]["responses"]
                            if not k.startswith("x-"))
        seen = exercised.get((template, method), set())
        print("  %-22s %-6s %-28s %s" % (op_id, method.upper(), template,
                                          " ".join(s if s in seen else "(%s)" % s
                                                   for s in documented)))
    print("  (a status in parentheses is documented but was not exercised)")
    missing = sorted(set(all_ids) - covered)
    if require_all and missing:
        failures += 1
        print("FAIL operations no exchange exercised: %s" % ", ".join(missing))
    print()
    print("%d exchanges, %d failing; %d of %d operations exercised"
          % (len(exchanges), failures, len(set(all_ids) & covered), len(all_ids)))
    return failures


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = [a for a in argv[1:] if a.startswith("--")]
    if len(args) not in (1, 2) or any(f != "--require-all-operations" for f in flags):
        raise UsageError(__doc__.split("\n\n")[1])
    spec_path = args[0]
    try:
        spec = load_spec(spec_path)
    except yaml.YAMLError as e:
        print("FAIL %s does not load as strict YAML: %s" % (spec_path, e))
        return 1
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (spec_path, e))

    problems = check_document(spec)
    for problem in problems:
        print("FAIL document: " + problem)
    if problems:
        print("%s: %d problems" % (spec_path, len(problems)))
        return 1
    op_count = sum(1 for _ in operations(spec))
    print("%s: valid OpenAPI %s, %d operations" % (spec_path, spec["openapi"], op_count))
    if len(args) == 1:
        return 0

    try:
        with open(args[1], encoding="utf-8") as f:
            recorded = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError("cannot read the exchanges %s: %s" % (args[1], e))
    exchanges = recorded.get("exchanges") if isinstance(recorded, dict) else None
    if not isinstance(exchanges, list) or not exchanges:
        print("FAIL %s holds no exchanges" % args[1])
        return 1
    failures = check_exchanges(spec, exchanges, "--require-all-operations" in flags)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except UsageError as e:
        print("openapi_contract.py: %s" % e, file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # a bug here must not pass for a contract failure
        print("openapi_contract.py: internal error: %r" % (e,), file=sys.stderr)
        sys.exit(2)
