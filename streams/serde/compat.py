"""Backward compatibility of Avro schemas, by the Avro specification's schema resolution rules.

``problems(reader, writer)`` answers: can a consumer using ``reader`` (the new schema) read
every datum written with ``writer`` (the old one)? It returns one human-readable line per
break, each starting with the path to the field (``hftstream.md.Trade.price``), or an
empty list when the new schema reads everything the old one wrote.

Rules (Avro 1.11 "Schema Resolution"):

* a field only the writer has is skipped (removing a field is fine);
* a field only the reader has must have a default (adding a field needs one);
  fields match by name or by a reader field alias;
* types must match, or be a promotion: int -> long/float/double, long -> float/double,
  float -> double, string <-> bytes;
* named types (record, enum, fixed) match by unqualified name or a reader alias; fixed sizes must be equal;
* an enum reader must hold every writer symbol, unless it has a ``default`` symbol;
* unions: every writer branch must resolve to a reader branch (the first that matches);
  a non-union writer must match some reader branch; a union writer read by a non-union
  reader must have every branch readable by it;
* arrays and maps compare their items / values; records recurse (recursive types are safe).

Schemas are JSON (dicts as in ``.avsc`` files); references to named types defined earlier
in the same schema are resolved. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


def problems(reader: Any, writer: Any) -> list[str]:
    """Every reason ``reader`` cannot read data written with ``writer`` (empty when backward compatible)."""
    checker = _Checker(_names(reader), _names(writer))
    checker.check(reader, writer, _label(writer, checker.wnames))
    return checker.found


def is_backward_compatible(reader: Any, writer: Any) -> bool:
    """True when ``reader`` (new) can read everything written with ``writer`` (old)."""
    return not problems(reader, writer)


def _full(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def _names(schema: Any) -> dict[str, dict[str, Any]]:
    """Named types defined anywhere in ``schema``, by full name."""
    found: dict[str, dict[str, Any]] = {}

    def walk(s: Any, ns: str | None) -> None:
        if isinstance(s, list):
            for b in s:
                walk(b, ns)
        elif isinstance(s, dict):
            t = s.get("type")
            if t in NAMED:
                full = _full(s["name"], s.get("namespace", ns))
                found.setdefault(full, s)
                inner = full.rpartition(".")[0] or None
                for f in s.get("fields", []):
                    walk(f.get("type"), inner)
            elif t == "array":
                walk(s.get("items"), ns)
            elif t == "map":
                walk(s.get("values"), ns)
            elif isinstance(t, (dict, list)):
                walk(t, ns)

    walk(schema, None)
    return found


def _resolve(s: Any, names: dict[str, dict[str, Any]]) -> Any:
    """Replace a reference (or a ``{"type": ...}`` wrapper) by what it stands for."""
    for _ in range(64):
        if isinstance(s, str) and s not in PRIMITIVES:
            hit = names.get(s) or next((v for k, v in names.items() if _short(k) == s), None)
            if hit is None:
                return s
            s = hit
        elif isinstance(s, dict) and not (s.get("type") in NAMED or s.get("type") in ("array", "map")):
            s = s.get("type")
        else:
            return s
    return s


def _kind(s: Any) -> str:
    if isinstance(s, list):
        return "union"
    if isinstance(s, str):
        return s
    return str(s.get("type"))


def _label(s: Any, names: dict[str, dict[str, Any]]) -> str:
    s = _resolve(s, names)
    if isinstance(s, dict) and s.get("type") in NAMED:
        return _full(s["name"], s.get("namespace"))
    if isinstance(s, list):
        return "union"
    return _kind(s)


def _type_name(s: Any) -> str:
    if isinstance(s, dict) and s.get("type") in NAMED:
        return f"{s['type']} {_short(s['name'])}"
    if isinstance(s, dict) and s.get("type") == "array":
        return "array"
    if isinstance(s, dict) and s.get("type") == "map":
        return "map"
    if isinstance(s, list):
        return "union"
    return str(s)


class _Checker:
    def __init__(self, rnames: dict[str, dict[str, Any]], wnames: dict[str, dict[str, Any]]) -> None:
        self.rnames, self.wnames = rnames, wnames
        self.found: list[str] = []
        self._visiting: set[tuple[int, int]] = set()

    def add(self, path: str, msg: str) -> None:
        self.found.append(f"{path}: {msg}")

    def names_match(self, r: dict[str, Any], w: dict[str, Any]) -> bool:
        wn = w["name"]
        rn = r["name"]
        aliases = {_short(a) for a in r.get("aliases", [])} | {a for a in r.get("aliases", [])}
        return _short(rn) == _short(wn) or _short(wn) in aliases or wn in aliases

    def shallow(self, r: Any, w: Any) -> bool:
        """Would Avro pick reader branch ``r`` for writer type ``w``? (kind and name only)."""
        r, w = _resolve(r, self.rnames), _resolve(w, self.wnames)
        rk, wk = _kind(r), _kind(w)
        if rk in PRIMITIVES and wk in PRIMITIVES:
            return rk == wk or rk in PROMOTIONS.get(wk, ())
        if rk != wk and not ({rk, wk} <= {"record", "error"}):
            return False
        if rk in NAMED:
            return self.names_match(r, w)
        return rk in ("array", "map")

    def check(self, r: Any, w: Any, path: str) -> None:
        r, w = _resolve(r, self.rnames), _resolve(w, self.wnames)
        rk, wk = _kind(r), _kind(w)
        if wk == "union":
            for branch in w:
                before = len(self.found)
                if rk == "union":
                    self._to_union(r, branch, path, union_writer=True)
                else:
                    self.check(r, branch, path)
                if len(self.found) > before and rk != "union":
                    return  # one report per field is enough
            return
        if rk == "union":
            self._to_union(r, w, path, union_writer=False)
            return
        if rk in PRIMITIVES or wk in PRIMITIVES:
            if not self.shallow(r, w):
                self.add(path, f"type changed from {_type_name(w)} to {_type_name(r)} (not an Avro promotion)")
            return
        if rk != wk and not ({rk, wk} <= {"record", "error"}):
            self.add(path, f"type changed from {_type_name(w)} to {_type_name(r)}")
            return
        if rk in NAMED and not self.names_match(r, w):
            self.add(path, f"{rk} name changed from {_short(w['name'])} to {_short(r['name'])} (add the old name to 'aliases')")
            return
        if rk == "array":
            self.check(r.get("items"), w.get("items"), f"{path}[]")
        elif rk == "map":
            self.check(r.get("values"), w.get("values"), f"{path}{{}}")
        elif rk == "enum":
            self._enum(r, w, path)
        elif rk == "fixed":
            if r.get("size") != w.get("size"):
                self.add(path, f"fixed size changed from {w.get('size')} to {r.get('size')}")
        elif rk in ("record", "error"):
            self._record(r, w, path)

    def _to_union(self, r: list[Any], w: Any, path: str, *, union_writer: bool) -> None:
        for branch in r:
            if self.shallow(branch, w):
                self.check(branch, w, path)
                return
        wl = _type_name(_resolve(w, self.wnames))
        rl = ", ".join(_type_name(_resolve(b, self.rnames)) for b in r)
        what = "union branch" if union_writer else "type"
        self.add(path, f"writer {what} {wl} matches no branch of the reader union [{rl}]")

    def _enum(self, r: dict[str, Any], w: dict[str, Any], path: str) -> None:
        missing = [s for s in w.get("symbols", []) if s not in set(r.get("symbols", []))]
        if missing and "default" not in r:
            self.add(path, f"enum {_short(r['name'])} lost symbol(s) {', '.join(missing)} and has no default symbol")

    def _record(self, r: dict[str, Any], w: dict[str, Any], path: str) -> None:
        key = (id(r), id(w))
        if key in self._visiting:
            return  # recursive type: this pair is being checked further up
        self._visiting.add(key)
        try:
            wfields = {f["name"]: f for f in w.get("fields", [])}
            for rf in r.get("fields", []):
                fpath = f"{path}.{rf['name']}"
                wf = wfields.get(rf["name"]) or next((wfields[a] for a in rf.get("aliases", []) if a in wfields), None)
                if wf is None:
                    if "default" not in rf:
                        self.add(fpath, "added without a default (old records have no value for it)")
                    else:
                        self._default_fits(rf, fpath)
                    continue
                self.check(rf["type"], wf["type"], fpath)
        finally:
            self._visiting.discard(key)

    def _default_fits(self, rf: dict[str, Any], path: str) -> None:
        t = _resolve(rf["type"], self.rnames)
        first = _kind(_resolve(t[0], self.rnames)) if isinstance(t, list) and t else _kind(t)
        d = rf["default"]
        ok = {
            "null": d is None,
            "boolean": isinstance(d, bool),
            "int": isinstance(d, int) and not isinstance(d, bool),
            "long": isinstance(d, int) and not isinstance(d, bool),
            "float": isinstance(d, (int, float)) and not isinstance(d, bool),
            "double": isinstance(d, (int, float)) and not isinstance(d, bool),
            "string": isinstance(d, str),
            "bytes": isinstance(d, str),
            "array": isinstance(d, list),
            "map": isinstance(d, dict),
            "record": isinstance(d, dict),
            "error": isinstance(d, dict),
            "enum": isinstance(d, str),
            "fixed": isinstance(d, str),
        }.get(first, True)
        if not ok:
            where = "the first branch of its union" if isinstance(t, list) else "its type"
            self.add(path, f"default {d!r} does not fit {where} ({first})")
