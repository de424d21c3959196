#!/usr/bin/env python3
"""Derive a private ClickHouse server config from the Debian package's config.

Reads config.xml and users.xml from --src (default /etc/clickhouse-server) and writes
them to --dst with:
  * every /var/... path moved under --root (data, logs, ...),
  * only the native TCP and HTTP ports, on 127.0.0.1 (interserver/https/mysql/... removed),
  * no substitutions from include files (remote_servers, zookeeper, macros dropped;
    an explicit <include_from> must exist, so none is set),
  * small caches, UTC server time zone, log level `information`,
  * the `default` user (no password) reachable from 127.0.0.1 and ::1 only.
Used by deploy/local/up; the package's files are never modified.
"""
import argparse
import os
import sys
import xml.etree.ElementTree as ET

# Listening ports other than tcp_port/http_port, over ClickHouse versions.
EXTRA_PORTS = (
    "interserver_http_port", "interserver_https_port", "interserver_http_host",
    "https_port", "tcp_port_secure", "tcp_with_proxy_port", "mysql_port",
    "postgresql_port", "grpc_port", "prometheus", "keeper_server",
)
# Elements that only refer to other machines or to include files we do not have.
DROP = ("remote_servers", "zookeeper", "macros", "auxiliary_zookeepers", "listen_host")


def set_child(parent, tag, text):
    el = parent.find(tag)
    if el is None:
        el = ET.SubElement(parent, tag)
    el.text = str(text)
    return el


def relocate(path, root):
    mapping = (
        ("/var/lib/clickhouse", os.path.join(root, "data")),
        ("/var/log/clickhouse-server", os.path.join(root, "logs")),
        ("/var/run/clickhouse-server", os.path.join(root, "run")),
        ("/var", os.path.join(root, "var")),
    )
    for old, new in mapping:
        if path == old or path.startswith(old + "/"):
            return new + path[len(old):]
    return path


def write(tree, dst):
    if hasattr(ET, "indent"):  # Python >= 3.9
        for el in tree.getroot().iter():
            if el.text is not None and not el.text.strip():
                el.text = None
            if el.tail is not None and not el.tail.strip():
                el.tail = None
        ET.indent(tree, space="    ")
    tree.write(dst, encoding="utf-8", xml_declaration=True)


def rewrite_config(src, dst, root, tcp_port, http_port):
    tree = ET.parse(src)
    cfg = tree.getroot()
    for tag in EXTRA_PORTS + DROP:
        for el in cfg.findall(tag):
            cfg.remove(el)
    for el in cfg.iter():
        el.attrib.pop("incl", None)
        el.attrib.pop("optional", None)
        if el.text and el.text.strip().startswith("/var"):
            el.text = relocate(el.text.strip(), root)
    set_child(cfg, "tcp_port", tcp_port)
    set_child(cfg, "http_port", http_port)
    ET.SubElement(cfg, "listen_host").text = "127.0.0.1"
    # The package's path elements, set explicitly in case a version lacks one.
    set_child(cfg, "path", os.path.join(root, "data") + "/")
    set_child(cfg, "tmp_path", os.path.join(root, "data", "tmp") + "/")
    set_child(cfg, "user_files_path", os.path.join(root, "data", "user_files") + "/")
    set_child(cfg, "format_schema_path", os.path.join(root, "data", "format_schemas") + "/")
    set_child(cfg, "users_config", "users.xml")
    logger = cfg.find("logger")
    if logger is None:
        logger = ET.SubElement(cfg, "logger")
    set_child(logger, "level", "information")
    set_child(logger, "log", os.path.join(root, "logs", "clickhouse-server.log"))
    set_child(logger, "errorlog", os.path.join(root, "logs", "clickhouse-server.err.log"))
    set_child(logger, "size", "100M")
    set_child(logger, "count", "3")
    set_child(cfg, "mark_cache_size", 256 << 20)
    set_child(cfg, "uncompressed_cache_size", 256 << 20)
    set_child(cfg, "timezone", "UTC")
    set_child(cfg, "mlock_executable", "false")
    leftovers = [el.text for el in cfg.iter()
                 if el.text and el.text.strip().startswith("/var/")
                 and not el.text.strip().startswith(root.rstrip("/") + "/")]
    if leftovers:
        sys.exit("mkconfig: unrelocated /var paths remain: %s" % ", ".join(leftovers))
    write(tree, dst)


def rewrite_users(src, dst):
    tree = ET.parse(src)
    users = tree.getroot().find("users")
    if users is None:
        sys.exit("mkconfig: %s has no <users> element" % src)
    for user in users:
        for el in user.iter():
            el.attrib.pop("incl", None)
        nets = user.find("networks")
        if nets is None:
            nets = ET.SubElement(user, "networks")
        for child in list(nets):
            nets.remove(child)
        for ip in ("127.0.0.1", "::1"):
            ET.SubElement(nets, "ip").text = ip
    default = users.find("default")
    if default is None:
        sys.exit("mkconfig: %s has no default user" % src)
    for tag in ("password_sha256_hex", "password_double_sha1_hex"):
        for el in default.findall(tag):
            default.remove(el)
    set_child(default, "password", "")
    write(tree, dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="/etc/clickhouse-server")
    ap.add_argument("--dst", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--tcp-port", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    a = ap.parse_args()
    os.makedirs(a.dst, exist_ok=True)
    for sub in ("data", "data/tmp", "data/user_files", "data/format_schemas", "logs"):
        os.makedirs(os.path.join(a.root, sub), exist_ok=True)
    try:
        rewrite_config(os.path.join(a.src, "config.xml"), os.path.join(a.dst, "config.xml"),
                       a.root, a.tcp_port, a.http_port)
        rewrite_users(os.path.join(a.src, "users.xml"), os.path.join(a.dst, "users.xml"))
    except (OSError, ET.ParseError) as e:
        sys.exit("mkconfig: %s" % e)


if __name__ == "__main__":
    main()
