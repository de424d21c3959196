#!/usr/bin/env python3
"""Write the config of one ClickHouse replica of the local cluster (deploy/cluster).

Starts from deploy/local/clickhouse/mkconfig.py's private config (the Debian package's, relocated under
--root, listening on 127.0.0.1 only) and adds what a replica needs:
  * the interserver HTTP port, on which the other replica fetches parts,
  * <zookeeper> (one server), <macros> (shard 01, replica --replica),
  * <remote_servers> with cluster --cluster: one shard, the replicas --replicas (host:tcp_port),
    internal_replication (the replicated tables copy the data themselves),
  * <distributed_ddl> (ON CLUSTER works too, though Inlet applies its migrations replica by replica),
  * smaller caches and a per-query memory limit (max_memory_usage) for the default profile.
"""
import argparse
import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "local", "clickhouse"))
import mkconfig  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="/etc/clickhouse-server")
    ap.add_argument("--dst", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--tcp-port", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--interserver-port", type=int, required=True)
    ap.add_argument("--replica", required=True)
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--replicas", required=True, help="host:port,host:port")
    ap.add_argument("--zookeeper", required=True, help="host:port")
    ap.add_argument("--max-memory", type=int, required=True)
    a = ap.parse_args()
    os.makedirs(a.dst, exist_ok=True)
    for sub in ("data", "data/tmp", "data/user_files", "data/format_schemas", "logs"):
        os.makedirs(os.path.join(a.root, sub), exist_ok=True)
    cfg_path = os.path.join(a.dst, "config.xml")
    users_path = os.path.join(a.dst, "users.xml")
    try:
        mkconfig.rewrite_config(os.path.join(a.src, "config.xml"), cfg_path, a.root, a.tcp_port, a.http_port)
        mkconfig.rewrite_users(os.path.join(a.src, "users.xml"), users_path)
        tree = ET.parse(cfg_path)
        cfg = tree.getroot()
        mkconfig.set_child(cfg, "interserver_http_port", a.interserver_port)
        mkconfig.set_child(cfg, "interserver_http_host", "127.0.0.1")
        mkconfig.set_child(cfg, "mark_cache_size", 64 << 20)
        mkconfig.set_child(cfg, "uncompressed_cache_size", 64 << 20)
        mkconfig.set_child(cfg, "max_concurrent_queries", 50)
        zk = ET.SubElement(cfg, "zookeeper")
        node = ET.SubElement(zk, "node")
        host, port = a.zookeeper.rsplit(":", 1)
        ET.SubElement(node, "host").text = host
        ET.SubElement(node, "port").text = port
        ET.SubElement(zk, "session_timeout_ms").text = "10000"
        macros = ET.SubElement(cfg, "macros")
        ET.SubElement(macros, "shard").text = "01"
        ET.SubElement(macros, "replica").text = a.replica
        rs = ET.SubElement(cfg, "remote_servers")
        shard = ET.SubElement(ET.SubElement(rs, a.cluster), "shard")
        ET.SubElement(shard, "internal_replication").text = "true"
        for r in a.replicas.split(","):
            host, port = r.rsplit(":", 1)
            rep = ET.SubElement(shard, "replica")
            ET.SubElement(rep, "host").text = host
            ET.SubElement(rep, "port").text = port
        ddl = ET.SubElement(cfg, "distributed_ddl")
        ET.SubElement(ddl, "path").text = "/clickhouse/task_queue/ddl"
        mkconfig.write(tree, cfg_path)

        utree = ET.parse(users_path)
        profiles = utree.getroot().find("profiles")
        default = profiles.find("default") if profiles is not None else None
        if default is None:
            sys.exit("chconfig: %s has no default profile" % users_path)
        mkconfig.set_child(default, "max_memory_usage", a.max_memory)
        mkconfig.write(utree, users_path)
    except (OSError, ET.ParseError) as e:
        sys.exit("chconfig: %s" % e)


if __name__ == "__main__":
    main()
