#!/usr/bin/env python3
"""Validates OCSF events against the official schema, as compiled by the
OCSF project's own library.

Usage: ocsf_check.py SCHEMA_DIR FILE

SCHEMA_DIR is a copy of the ocsf-schema repository (1.8.0 here); FILE holds
one JSON event per line. The schema is compiled with `ocsf-lib` from PyPI
(pip install 'ocsf-lib>=0.10.4,<0.11'), `ocsf.util.get_schema`, which
resolves inheritance, profiles, includes and the dictionary as the OCSF
server does. Each event is then checked:

- its class exists (by class_uid) and category_uid is the class's category;
- type_uid == class_uid * 100 + activity_id, and metadata.version is the
  schema's version;
- every required attribute is present, recursively through objects; an
  attribute that belongs to a profile is required only when the event
  names that profile in metadata.profiles, and used only then;
- every attribute is defined by the class or object that holds it, and is
  not deprecated;
- every value has its declared type (string, integer, boolean, object,
  array), and the constraints of derived types (the patterns of email_t,
  ip_t, uuid_t..., maximum lengths, ranges);
- enum ids are among the enum's values, and a caption beside one
  (activity_name, class_name, type_name, severity, status, type...) is that
  id's caption, or free text for Other (99), where it must be present;
- the constraints of classes and objects: at_least_one, just_one.

ocsf-lib 0.10 compiles two things differently from the OCSF server, which
this script corrects from the repository's own files: an object or class
that redefines `constraints` gets its parent's instead (user would need
name or uid, where the schema says account, name or uid; network_endpoint
would refuse an endpoint given by ip alone), and an attribute a class takes
out of a profile with `"profile": null` (actor and api in API Activity)
keeps the profile.

Exits 0 when every event is valid, 1 when one is not, and 77 when ocsf-lib
is not installed (the caller decides whether that is a skip).
"""

import glob
import json
import os
import re
import sys

try:
    from ocsf.util import get_schema
except ImportError:
    print("ocsf_check: the ocsf-lib package is not installed (pip install 'ocsf-lib>=0.10.4,<0.11')")
    sys.exit(77)

OTHER = "99"
PRIMITIVES = {
    "string_t": lambda v: isinstance(v, str),
    "integer_t": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long_t": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float_t": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean_t": lambda v: isinstance(v, bool),
    "json_t": lambda v: True,
}


def load_raw(schema_dir, kind):
    """The repository's own definitions of `kind` (events or objects), by
    name, as written: before any compilation."""
    defs = {}
    for path in glob.glob(os.path.join(schema_dir, kind, "**", "*.json"), recursive=True):
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if isinstance(d, dict) and "name" in d:
            defs[d["name"]] = d
    return defs


def chain(raw, name):
    """`name`'s definition, then its parent's, and so on."""
    seen = set()
    while name in raw and name not in seen:
        seen.add(name)
        yield raw[name]
        name = raw[name].get("extends")


class Schema:
    def __init__(self, schema_dir):
        self.compiled = get_schema(schema_dir)
        self.raw = {"events": load_raw(schema_dir, "events"), "objects": load_raw(schema_dir, "objects")}
        self.classes = {c.uid: c for c in self.compiled.classes.values() if c.uid is not None}
        self.categories = {name: c.uid for name, c in (self.compiled.categories or {}).items()}

    def constraints(self, kind, name, compiled):
        for d in chain(self.raw[kind], name):
            if "constraints" in d:
                return d["constraints"]
        return compiled or {}

    def profile(self, kind, owner, attr_name, compiled):
        """The profile an attribute belongs to (None: none); the nearest
        definition that says so explicitly wins."""
        for d in chain(self.raw[kind], owner):
            attr = d.get("attributes", {}).get(attr_name)
            if isinstance(attr, dict) and "profile" in attr:
                return attr["profile"]
        return compiled

    def primitive(self, type_name):
        """The base primitive of a type (email_t: string_t), and the chain
        of its type definitions."""
        defs = []
        while type_name in self.compiled.types and type_name not in PRIMITIVES:
            t = self.compiled.types[type_name]
            defs.append(t)
            if not t.type:
                break
            type_name = t.type
        return type_name, defs + ([self.compiled.types[type_name]] if type_name in self.compiled.types else [])


class Validator:
    def __init__(self, schema, profiles):
        self.schema = schema
        self.profiles = profiles
        self.errors = []

    def error(self, path, message):
        self.errors.append(f"{path or '(event)'}: {message}")

    def check_attributes(self, value, attrs, kind, owner, constraints, path):
        for name, attr in attrs.items():
            profile = self.schema.profile(kind, owner, name, attr.profile)
            if not self.profile_applies(profile):
                if name in value:
                    self.error(f"{path}{name}", f"belongs to profile {profile}, not in metadata.profiles")
                continue
            if attr.requirement == "required" and value.get(name) is None:
                self.error(f"{path}{name}", "required but missing")
        for name, v in value.items():
            attr = attrs.get(name)
            if attr is None:
                self.error(f"{path}{name}", f"is not an attribute of {owner}")
                continue
            if attr.deprecated:
                self.error(f"{path}{name}", f"is deprecated: {attr.deprecated.message}")
            self.check_value(v, attr, f"{path}{name}")
            self.check_sibling(value, name, attr, f"{path}{name}")
        self.check_constraints(value, constraints, path)

    def profile_applies(self, profile):
        if profile is None:
            return True
        names = profile if isinstance(profile, list) else [profile]
        return any(p in self.profiles for p in names)

    def check_constraints(self, value, constraints, path):
        present = {k for k, v in value.items() if v is not None}
        for rule, names in (constraints or {}).items():
            count = len(present & set(names))
            if rule == "at_least_one" and count < 1:
                self.error(path.rstrip(".") or "(event)", f"needs at least one of {names}")
            elif rule == "just_one" and count != 1:
                self.error(path.rstrip(".") or "(event)", f"needs exactly one of {names}")

    def check_value(self, v, attr, path):
        if attr.is_array:
            if not isinstance(v, list):
                self.error(path, f"must be an array of {attr.type}")
                return
            for i, item in enumerate(v):
                self.check_single(item, attr, f"{path}[{i}]")
        else:
            self.check_single(v, attr, path)

    def check_single(self, v, attr, path):
        t = attr.type
        if t in self.schema.compiled.types:
            self.check_primitive(v, t, path)
        elif t == "object":
            if not isinstance(v, dict):
                self.error(path, "must be an object")
        elif t in self.schema.compiled.objects:
            self.check_object(v, t, path)
        else:
            self.error(path, f"has unknown type {t}")
        if attr.enum and str(v) not in attr.enum:
            self.error(path, f"{v!r} is not one of {sorted(attr.enum, key=int)}")

    def check_primitive(self, v, type_name, path):
        base, defs = self.schema.primitive(type_name)
        if base not in PRIMITIVES or not PRIMITIVES[base](v):
            self.error(path, f"{v!r} is not a {type_name} ({base})")
            return
        for t in defs:
            if t.regex and isinstance(v, str) and not re.search(t.regex, v):
                self.error(path, f"{v!r} does not match the pattern of {type_name}")
            if t.max_len and isinstance(v, str) and len(v) > t.max_len:
                self.error(path, f"is longer than {t.max_len}")
            if t.range and not (t.range[0] <= v <= t.range[1]):
                self.error(path, f"{v!r} is outside {t.range}")
            if t.values and v not in t.values:
                self.error(path, f"{v!r} is not one of {t.values}")

    def check_object(self, v, name, path):
        if not isinstance(v, dict):
            self.error(path, f"must be an object ({name})")
            return
        obj = self.schema.compiled.objects[name]
        constraints = self.schema.constraints("objects", name, obj.constraints)
        self.check_attributes(v, obj.attributes, "objects", name, constraints, f"{path}.")

    def check_sibling(self, parent, name, attr, path):
        """An enum id and the caption beside it must agree."""
        if not attr.enum or not attr.sibling:
            return
        v = str(parent[name])
        caption = parent.get(attr.sibling)
        if v == OTHER:
            if not caption:
                self.error(path, f"is Other (99): {attr.sibling} must say what it is")
        elif caption is not None and v in attr.enum and caption != attr.enum[v].caption:
            self.error(path, f"{attr.sibling} {caption!r} is not the caption of {v}, {attr.enum[v].caption!r}")


def check_event(schema, event):
    """The problems of one event, as messages."""
    if not isinstance(event, dict):
        return ["an event must be a JSON object"]
    cls = schema.classes.get(event.get("class_uid"))
    if cls is None:
        return [f"class_uid {event.get('class_uid')!r} is no class of OCSF {schema.compiled.version}"]
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    v = Validator(schema, set(metadata.get("profiles") or []))
    constraints = schema.constraints("events", cls.name, cls.constraints)
    v.check_attributes(event, cls.attributes, "events", cls.name, constraints, "")
    category = schema.categories.get(cls.category)
    if event.get("category_uid") != category:
        v.error("category_uid", f"{event.get('category_uid')!r}, but {cls.name} is in category {category}")
    try:
        if event["type_uid"] != event["class_uid"] * 100 + event["activity_id"]:
            v.error("type_uid", "is not class_uid * 100 + activity_id")
    except (KeyError, TypeError):
        v.error("type_uid", "cannot be checked against class_uid and activity_id")
    if metadata.get("version") != schema.compiled.version:
        v.error("metadata.version", f"{metadata.get('version')!r}, not {schema.compiled.version}")
    return v.errors


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    schema = Schema(sys.argv[1])
    failures = total = 0
    with open(sys.argv[2], encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            total += 1
            event = json.loads(line)
            errors = check_event(schema, event)
            if errors:
                failures += 1
                print(f"event {n} ({event.get('metadata', {}).get('event_code', '?')}):")
                for e in errors:
                    print(f"  {e}")
    print(f"ocsf_check: {total - failures} of {total} events valid against OCSF {schema.compiled.version}")
    return 1 if failures or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
