"""Where the delta-rs engine keeps its files: a local disk, or an S3 API.

Spark reads and writes object stores through hadoop-aws (`s3a://`); delta-rs and pyarrow
speak `s3://`. One table therefore has two spellings of the same place, and the settings
of the S3 endpoint (URL, region, path-style addressing) are taken from the Spark
session's Hadoop configuration, so a user configures the endpoint once (`spark.extra`).
Credentials are never copied: delta-rs (object_store) and pyarrow (the AWS SDK) read
them from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, or the
instance's role), as hadoop-aws does.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Protocol
from urllib.parse import urlparse

import pyarrow.parquet as pq
from pyspark.sql import SparkSession

S3_SCHEMES = ("s3://", "s3a://", "s3n://")


def is_object_store(uri: str) -> bool:
    return uri.startswith(S3_SCHEMES)


def spark_uri(uri: str) -> str:
    """The hadoop-aws spelling (`s3a://`) of an S3 URI; other URIs unchanged."""
    for scheme in ("s3://", "s3n://"):
        if uri.startswith(scheme):
            return "s3a://" + uri[len(scheme) :]
    return uri


def delta_rs_uri(uri: str) -> str:
    """The delta-rs / pyarrow spelling (`s3://`) of an S3 URI; other URIs unchanged."""
    for scheme in ("s3a://", "s3n://"):
        if uri.startswith(scheme):
            return "s3://" + uri[len(scheme) :]
    return uri


def s3_storage_options(spark: SparkSession) -> dict[str, str]:
    """delta-rs storage options for the endpoint the session's hadoop-aws uses (no
    credentials). Environment variables delta-rs reads itself (AWS_ENDPOINT_URL,
    AWS_REGION) win over the Hadoop settings."""
    hconf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    opts: dict[str, str] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or hconf.get("fs.s3a.endpoint") or ""
    if endpoint and "://" not in endpoint:
        ssl = (hconf.get("fs.s3a.connection.ssl.enabled") or "true").lower() != "false"
        endpoint = ("https://" if ssl else "http://") + endpoint
    if endpoint:
        opts["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
    region = (
        os.environ.get("AWS_REGION")
        or hconf.get("fs.s3a.endpoint.region")
        or os.environ.get("AWS_DEFAULT_REGION")
    )
    if region:
        opts["AWS_REGION"] = region
    if (hconf.get("fs.s3a.path.style.access") or "").lower() == "true":
        opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    return opts


class Files(Protocol):
    """The few file operations the delta-rs engine's writes and vacuum need."""

    def parquet_files(self, prefix: str) -> list[tuple[str, int]]: ...
    def move(self, src: str, dest: str) -> None: ...
    def remove_tree(self, prefix: str) -> None: ...
    def exists(self, path: str) -> bool: ...
    def num_rows(self, path: str) -> int: ...
    def subfolders_older_than(self, prefix: str, cutoff: float) -> list[str]: ...


class LocalFiles:
    def parquet_files(self, prefix: str) -> list[tuple[str, int]]:
        out = []
        for dirpath, _dirs, names in os.walk(prefix):
            for name in names:
                if name.endswith(".parquet"):
                    p = os.path.join(dirpath, name)
                    out.append((p, os.path.getsize(p)))
        return sorted(out)

    def move(self, src: str, dest: str) -> None:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(src, dest)

    def remove_tree(self, prefix: str) -> None:
        shutil.rmtree(prefix, ignore_errors=True)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def num_rows(self, path: str) -> int:
        return pq.read_metadata(path).num_rows

    def subfolders_older_than(self, prefix: str, cutoff: float) -> list[str]:
        if not os.path.isdir(prefix):
            return []
        return [
            os.path.join(prefix, name)
            for name in sorted(os.listdir(prefix))
            if os.path.getmtime(os.path.join(prefix, name)) <= cutoff
        ]


class S3Files:
    """The same operations on an S3 API through pyarrow's S3 client. Paths are the
    engine's Spark spelling (`s3a://bucket/key`); a move is a server-side copy and a
    delete (S3 has no rename), done before the commit that makes the file visible."""

    def __init__(self, options: dict[str, str]) -> None:
        from pyarrow import fs

        endpoint = options.get("AWS_ENDPOINT_URL", "")
        kwargs: dict[str, object] = {"region": options.get("AWS_REGION") or "us-east-1"}
        if endpoint:
            parsed = urlparse(endpoint)
            kwargs["endpoint_override"] = parsed.netloc or endpoint
            kwargs["scheme"] = parsed.scheme or "https"
        if options.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST") == "false":
            kwargs["force_virtual_addressing"] = False
        self._fs = fs.S3FileSystem(**kwargs)  # credentials: the AWS SDK's default chain
        self._fs_module = fs

    @staticmethod
    def _key(uri: str) -> str:
        for scheme in S3_SCHEMES:
            if uri.startswith(scheme):
                return uri[len(scheme) :]
        return uri

    def _infos(self, prefix: str):
        selector = self._fs_module.FileSelector(
            self._key(prefix).rstrip("/"), recursive=True, allow_not_found=True
        )
        return [i for i in self._fs.get_file_info(selector) if i.type.name == "File"]

    def parquet_files(self, prefix: str) -> list[tuple[str, int]]:
        return sorted(
            ("s3a://" + i.path, int(i.size or 0))
            for i in self._infos(prefix)
            if i.path.endswith(".parquet")
        )

    def move(self, src: str, dest: str) -> None:
        self._fs.copy_file(self._key(src), self._key(dest))
        self._fs.delete_file(self._key(src))

    def remove_tree(self, prefix: str) -> None:
        """Every object under the prefix, folder markers (`key/`) included."""
        try:
            self._fs.delete_dir(self._key(prefix).rstrip("/"))
        except FileNotFoundError:
            pass

    def exists(self, path: str) -> bool:
        return self._fs.get_file_info(self._key(path)).type.name == "File"

    def num_rows(self, path: str) -> int:
        return pq.read_metadata(self._key(path), filesystem=self._fs).num_rows

    def subfolders_older_than(self, prefix: str, cutoff: float) -> list[str]:
        """Subfolders whose newest object is older than `cutoff` (S3 has no folder times)."""
        root = self._key(prefix).rstrip("/") + "/"
        newest: dict[str, float] = {}
        for info in self._infos(prefix):
            name = info.path[len(root) :].split("/", 1)[0]
            mtime = info.mtime.timestamp() if info.mtime else time.time()
            newest[name] = max(newest.get(name, 0.0), mtime)
        base = prefix.rstrip("/")
        return [f"{base}/{n}" for n, t in sorted(newest.items()) if t <= cutoff]


def files_for(root: str, spark: SparkSession) -> Files:
    return S3Files(s3_storage_options(spark)) if is_object_store(root) else LocalFiles()


def hadoop_files(spark: SparkSession, uri: str) -> dict[str, int]:
    """Data files (`.parquet`, outside `_delta_log/`) under `uri` with their sizes, listed
    through Hadoop's FileSystem (any scheme the session reaches: s3a://, abfss://, file:).
    {} when `uri` does not exist."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(spark_uri(uri))
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    if not fs.exists(path):
        return {}
    out: dict[str, int] = {}
    it = fs.listFiles(path, True)
    while it.hasNext():
        st = it.next()
        p = st.getPath().toString()
        if p.endswith(".parquet") and "/_delta_log/" not in p:
            out[p] = int(st.getLen())
    return out


def hadoop_delta_tables(spark: SparkSession, root: str) -> list[str]:
    """`layer.table` for every `<root>/<layer>/<table>/_delta_log` (layers starting with
    `.` or `_` skipped), listed through Hadoop's FileSystem."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    base = jvm.org.apache.hadoop.fs.Path(spark_uri(root))
    fs = base.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    if not fs.exists(base):
        return []
    out = []
    for layer in fs.listStatus(base):
        name = layer.getPath().getName()
        if not layer.isDirectory() or name.startswith((".", "_")):
            continue
        for table in fs.listStatus(layer.getPath()):
            log_dir = jvm.org.apache.hadoop.fs.Path(table.getPath(), "_delta_log")
            if table.isDirectory() and fs.exists(log_dir):
                out.append(f"{name}.{table.getPath().getName()}")
    return sorted(out)
