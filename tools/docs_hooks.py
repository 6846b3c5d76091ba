"""MkDocs hooks (mkdocs.yml `hooks:`): pages made from the code at build time,
so they never drift from it.

- `http-api.md`: every endpoint of the HTTP service, its form fields and its
  answers, from the app's own OpenAPI schema (`create_app().openapi()`).
- `licences.md`: NOTICE.md, the one list of what faceup ships that it did not write.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]


def _schema_type(schema: dict) -> str:
    if "anyOf" in schema:
        return " or ".join(_schema_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_schema_type(schema.get('items', {}))}"
    if schema.get("format") == "binary":
        return "file"
    return schema.get("type", "object")


def http_reference() -> str:
    from faceup.server import create_app

    spec = create_app().openapi()
    comps = spec.get("components", {}).get("schemas", {})
    out = ["# HTTP API reference", "",
           f"Generated from the service's own OpenAPI schema (faceup {spec['info']['version']}); the same schema is "
           "served at `GET /openapi.json` and browsable at `GET /docs` on a running server.", ""]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            out += [f"## `{method.upper()} {path}`", "", op.get("summary", ""), ""]
            body = op.get("requestBody", {}).get("content", {})
            form = next(iter(body.values()), {}).get("schema", {}) if body else {}
            if "$ref" in form:
                form = comps.get(form["$ref"].rsplit("/", 1)[1], {})
            props = form.get("properties", {})
            if props:
                required = set(form.get("required", []))
                out += ["| field | type | required | default | description |", "|---|---|---|---|---|"]
                for name, p in props.items():
                    default = p.get("default", "")
                    desc = (p.get("description") or "").replace("|", "\\|").replace("\n", " ")
                    out.append(f"| `{name}` | {_schema_type(p)} | {'yes' if name in required else ''} | "
                               f"{'' if default == '' else f'`{default}`'} | {desc} |")
                out.append("")
            answers = []
            for code, r in op.get("responses", {}).items():
                kinds = ", ".join(r.get("content", {}).keys()) or "-"
                answers.append(f"| {code} | {kinds} | {(r.get('description') or '').replace('|', '/')} |")
            if answers:
                out += ["| status | content | description |", "|---|---|---|", *answers, ""]
    return "\n".join(out) + "\n"


def on_files(files, config):
    files.append(File.generated(config, "http-api.md", content=http_reference()))
    notice = (ROOT / "NOTICE.md").read_text()
    files.append(File.generated(config, "licences.md", content=notice.replace("(LICENSE)", "(the LICENSE file)")))
    return files
