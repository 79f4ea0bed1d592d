#!/usr/bin/env python3
"""A small Butane -> Ignition translator for the subset the boot scenarios use.

Butane is not packaged in Debian 12, so the scenarios' config.bu files are turned
into config.ign by this script (python3 standard library only). It accepts:

  variant: flatcar (version 1.0.0) or fcos (version 1.4.0)  -> Ignition spec 3.3.0
  ignition:  passed through (config merge/replace, timeouts, ...)
  storage:   files (contents.inline / contents.local / contents.source,
             verification.hash, mode, overwrite, user, group), directories, links
  systemd:   units (name, enabled, mask, contents, dropins)
  passwd:    passed through

and a YAML subset: block maps and sequences, plain/quoted scalars, '#' comments,
literal block scalars ('|', '|-', '|+'), '[]'/'{}' and simple flow sequences.
Modes written like 0644 are octal, as in Butane's docs. Anything else is an error
rather than a silent difference. The output is semantically what Butane produces
(inline/local contents become data: URLs; Butane may gzip them, this does not).

usage:
  butane.py [-d FILES_DIR] CONFIG.bu            print the Ignition JSON
  butane.py [-d FILES_DIR] CONFIG.bu -o OUT     write it
  butane.py --check [-d FILES_DIR] CONFIG.bu    exit 1 if CONFIG.ign next to it differs
"""
import argparse
import base64
import json
import os
import re
import sys
import urllib.parse


class YamlError(Exception):
    pass


# ----------------------------------------------------------------------------- YAML subset
def _strip_comment(s):
    out, q = [], None
    for i, c in enumerate(s):
        if q:
            if c == q:
                q = None
        elif c in "\"'":
            q = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            break
        out.append(c)
    return "".join(out).rstrip()


def _scalar(tok, lineno):
    t = tok.strip()
    if t == "":
        return None
    if t[0] == '"':
        if not t.endswith('"') or len(t) < 2:
            raise YamlError(f"line {lineno}: unterminated string")
        return json.loads(t)
    if t[0] == "'":
        if not t.endswith("'") or len(t) < 2:
            raise YamlError(f"line {lineno}: unterminated string")
        return t[1:-1].replace("''", "'")
    if t[0] == "[":
        if not t.endswith("]"):
            raise YamlError(f"line {lineno}: only one-line flow sequences are supported")
        inner = t[1:-1].strip()
        return [] if not inner else [_scalar(x, lineno) for x in inner.split(",")]
    if t == "{}":
        return {}
    if t[0] in "{&*!|>%@`":
        raise YamlError(f"line {lineno}: unsupported YAML: {t!r}")
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if t in ("null", "~", "Null", "NULL"):
        return None
    if re.fullmatch(r"0o?[0-7]+", t):
        return int(t.replace("o", ""), 8)
    if re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", t):
        return int(t)
    return t


_KEY = re.compile(r"""^("(?:[^"\\]|\\.)*"|'[^']*'|[^\s"'#\-?:][^:]*?|-[^\s:][^:]*?)\s*:(?:\s+(.*))?$""")


class _Parser:
    def __init__(self, text):
        self.lines = text.split("\n")
        self.pos = 0

    def _next(self):
        """Index, indent and text of the next meaningful line (or None)."""
        i = self.pos
        while i < len(self.lines):
            raw = self.lines[i]
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise YamlError(f"line {i + 1}: tabs are not allowed for indentation")
            body = _strip_comment(raw)
            if body.strip() and body.strip() != "---":
                return i, len(body) - len(body.lstrip(" ")), body.strip()
            i += 1
        return None

    def parse(self):
        n = self._next()
        if n is None:
            return None
        val = self._block(n[1])
        if self._next() is not None:
            i = self._next()[0]
            raise YamlError(f"line {i + 1}: unexpected indentation")
        return val

    def _block(self, indent):
        _, ind, text = self._next()
        if text == "-" or text.startswith("- "):
            return self._seq(ind)
        return self._map(ind)

    def _value_after_key(self, rest, indent, lineno):
        if rest is None or rest == "":
            n = self._next()
            if n is None:
                return None
            if n[1] > indent:
                return self._block(n[1])
            if n[1] == indent and (n[2] == "-" or n[2].startswith("- ")):
                return self._seq(indent)
            return None
        if rest[0] in "|>":
            return self._literal(rest, indent, lineno)
        return _scalar(rest, lineno)

    def _map(self, indent):
        out = {}
        while True:
            n = self._next()
            if n is None or n[1] < indent:
                return out
            i, ind, text = n
            if ind > indent:
                raise YamlError(f"line {i + 1}: unexpected indentation")
            if text == "-" or text.startswith("- "):
                return out  # a sequence at the same indent belongs to the parent key
            m = _KEY.match(text)
            if not m:
                raise YamlError(f"line {i + 1}: expected 'key: value', got {text!r}")
            key = _scalar(m.group(1), i + 1)
            if key in out:
                raise YamlError(f"line {i + 1}: duplicate key {key!r}")
            self.pos = i + 1
            out[key] = self._value_after_key(m.group(2), indent, i + 1)

    def _seq(self, indent):
        out = []
        while True:
            n = self._next()
            if n is None or n[1] != indent or not (n[2] == "-" or n[2].startswith("- ")):
                if n is not None and n[1] > indent:
                    raise YamlError(f"line {n[0] + 1}: unexpected indentation")
                return out
            i, ind, text = n
            rest = text[1:].lstrip(" ")
            if rest == "":
                self.pos = i + 1
                nn = self._next()
                out.append(self._block(nn[1]) if nn is not None and nn[1] > indent else None)
                continue
            if _KEY.match(rest) and not rest[0] in "\"'[":
                # "- key: value": a map whose first line is this one, indented past the dash.
                col = ind + len(text) - len(rest)
                self.lines[i] = " " * col + rest
                self.pos = i
                out.append(self._map(col))
                continue
            self.pos = i + 1
            if rest[0] in "|>":
                out.append(self._literal(rest, indent, i + 1))
            else:
                out.append(_scalar(rest, i + 1))

    def _literal(self, header, indent, lineno):
        m = re.fullmatch(r"\|([+-]?)", header.strip())
        if not m:
            raise YamlError(f"line {lineno}: only literal block scalars ('|', '|-', '|+') are supported")
        chomp = m.group(1)
        body, block_ind = [], None
        i = self.pos
        while i < len(self.lines):
            raw = self.lines[i]
            if raw.strip() == "":
                body.append("")
                i += 1
                continue
            ind = len(raw) - len(raw.lstrip(" "))
            if block_ind is None:
                if ind <= indent:
                    break
                block_ind = ind
            if ind < block_ind:
                break
            body.append(raw[block_ind:])
            i += 1
        # trailing blank lines belong to the scalar only for '|+'
        j = len(body)
        while j > 0 and body[j - 1] == "":
            j -= 1
        trailing = body[j:]
        body = body[:j]
        self.pos = i - len(trailing) if chomp != "+" else i
        text = "\n".join(body)
        if chomp == "-":
            return text
        if chomp == "+":
            return text + "\n" + "\n" * len(trailing)
        return text + "\n" if body else ""


def load_yaml(text):
    return _Parser(text).parse()


# ----------------------------------------------------------------------------- Butane
SPECS = {("flatcar", "1.0.0"): "3.3.0", ("fcos", "1.4.0"): "3.3.0"}


class ButaneError(Exception):
    pass


def _only(d, allowed, where):
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ButaneError(f"{where}: expected a map")
    extra = sorted(set(d) - set(allowed))
    if extra:
        raise ButaneError(f"{where}: unsupported key(s) {', '.join(extra)} (this translator knows a subset)")
    return d


def _data_url(data: bytes):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and len(urllib.parse.quote(text, safe="")) <= len(data) * 4 // 3 + 8:
        return "data:," + urllib.parse.quote(text, safe="/:=@,;!$&'()*+~-._")
    return "data:;base64," + base64.b64encode(data).decode("ascii")


def _contents(c, files_dir, where):
    c = dict(_only(c, ["source", "inline", "local", "verification", "compression", "httpHeaders"], where))
    given = [k for k in ("source", "inline", "local") if k in c]
    if len(given) > 1:
        raise ButaneError(f"{where}: only one of source, inline, local")
    if "inline" in c:
        c["source"] = _data_url(str(c.pop("inline")).encode("utf-8"))
    elif "local" in c:
        rel = c.pop("local")
        if files_dir is None:
            raise ButaneError(f"{where}: contents.local needs -d FILES_DIR")
        if os.path.isabs(rel) or ".." in rel.split("/"):
            raise ButaneError(f"{where}: contents.local must be relative, without '..'")
        with open(os.path.join(files_dir, rel), "rb") as f:
            c["source"] = _data_url(f.read())
    if "verification" in c:
        v = _only(c["verification"], ["hash"], where + ".verification")
        if "hash" in v and not re.fullmatch(r"(sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})", v["hash"]):
            raise ButaneError(f"{where}.verification.hash: expected sha256-<64 hex> or sha512-<128 hex>")
    return c


def translate(bu, files_dir=None):
    bu = _only(bu, ["variant", "version", "ignition", "storage", "systemd", "passwd"], "config")
    spec = SPECS.get((bu.get("variant"), bu.get("version")))
    if spec is None:
        raise ButaneError("variant/version must be one of: "
                          + ", ".join(f"{v} {n}" for v, n in SPECS))
    ign = {"ignition": dict(bu.get("ignition") or {})}
    ign["ignition"]["version"] = spec
    ign["ignition"] = {"version": spec, **{k: v for k, v in ign["ignition"].items() if k != "version"}}

    st = _only(bu.get("storage"), ["files", "directories", "links"], "storage")
    if st:
        out = {}
        for kind in ("directories", "files", "links"):
            items = st.get(kind)
            if not items:
                continue
            res = []
            for n, item in enumerate(items):
                where = f"storage.{kind}[{n}]"
                allowed = {"directories": ["path", "mode", "overwrite", "user", "group"],
                           "files": ["path", "mode", "overwrite", "user", "group", "contents", "append"],
                           "links": ["path", "target", "hard", "overwrite", "user", "group"]}[kind]
                item = dict(_only(item, allowed, where))
                if not str(item.get("path", "")).startswith("/"):
                    raise ButaneError(f"{where}: path must be absolute")
                if "contents" in item:
                    item["contents"] = _contents(item["contents"], files_dir, where + ".contents")
                if "append" in item:
                    item["append"] = [_contents(a, files_dir, f"{where}.append[{i}]")
                                      for i, a in enumerate(item["append"])]
                res.append(item)
            out[kind] = res
        ign["storage"] = out

    sd = _only(bu.get("systemd"), ["units"], "systemd")
    if sd.get("units"):
        units = []
        for n, u in enumerate(sd["units"]):
            u = dict(_only(u, ["name", "enabled", "mask", "contents", "dropins"], f"systemd.units[{n}]"))
            if "dropins" in u:
                u["dropins"] = [dict(_only(d, ["name", "contents"], f"systemd.units[{n}].dropins"))
                                for d in u["dropins"]]
            units.append(u)
        ign["systemd"] = {"units": units}

    if bu.get("passwd"):
        ign["passwd"] = bu["passwd"]
    return ign


def render(path, files_dir=None):
    with open(path, encoding="utf-8") as f:
        bu = load_yaml(f.read())
    ign = translate(bu, files_dir)
    return json.dumps(ign, indent=2, ensure_ascii=False) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Butane (subset) to Ignition 3.3.0")
    ap.add_argument("config")
    ap.add_argument("-d", "--files-dir", help="directory for contents.local (like butane -d)")
    ap.add_argument("-o", "--output")
    ap.add_argument("--check", action="store_true",
                    help="compare with the .ign next to the .bu; exit 1 if they differ")
    a = ap.parse_args(argv)
    try:
        text = render(a.config, a.files_dir)
    except (YamlError, ButaneError, OSError) as e:
        print(f"butane.py: {a.config}: {e}", file=sys.stderr)
        return 2
    if a.check:
        ign = os.path.splitext(a.config)[0] + ".ign"
        try:
            with open(ign, encoding="utf-8") as f:
                have = f.read()
        except OSError as e:
            print(f"butane.py: {e}", file=sys.stderr)
            return 1
        if have != text:
            print(f"butane.py: {ign} is not the translation of {a.config}; "
                  f"regenerate it with boot/configs.sh", file=sys.stderr)
            return 1
        return 0
    if a.output:
        tmp = a.output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, a.output)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
