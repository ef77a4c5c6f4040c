"""A content-addressed blob store in an S3 bucket (AWS S3, Ceph RGW, MinIO, ...).

Each blob is an object named by the sha256 of its content::

    s3://<bucket>/<prefix>/sha256/<first two hex digits>/<sha256 hex>

Where the bucket is reached and as whom is boto3's business, resolved the
standard way: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``),
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (or ``AWS_PROFILE`` and the
shared config files), ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
``AWS_MAX_ATTEMPTS``... Nothing server-specific is set here. For S3-compatible
servers that refuse the CRC32 checksums boto3 >= 1.36 sends by default (older
Ceph, over HTTPS), set ``AWS_REQUEST_CHECKSUM_CALCULATION=when_required``.

- A blob already stored is never uploaded again (a HEAD first).
- Uploads hash the bytes in order as they are read and send them as parallel
  multipart parts (``MODELYARD_S3_PART_SIZE``, default 16 MiB, and
  ``MODELYARD_S3_CONCURRENCY``, default 8, parts at a time: memory stays at
  about their product). The upload is completed only when the digest matches,
  otherwise aborted: a file that changed meanwhile, a reader that failed or a
  Ctrl-C never leaves a visible blob. Blobs smaller than a part go up in one
  PUT, after their hash was checked.
- Downloads come down as parallel ranged GETs written at their offsets, and
  the file is verified before :meth:`S3BlobStore.copy_to` returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions

from modelyard.errors import ArtifactStoreError, IntegrityError
from modelyard.store import BlobInfo
from modelyard.store._transfer import fetch_into, read_parts, send_parts
from modelyard.store.artifacts import parse_s3_uri

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

__all__ = ["ENV_CONCURRENCY", "ENV_PART_SIZE", "S3BlobStore", "open_s3_store"]

logger = logging.getLogger(__name__)

ENV_PART_SIZE = "MODELYARD_S3_PART_SIZE"
ENV_CONCURRENCY = "MODELYARD_S3_CONCURRENCY"
_MIB = 1024 * 1024
_DEFAULT_PART = 16 * _MIB
_DEFAULT_CONCURRENCY = 8
# S3's own limits on multipart uploads.
_MIN_PART = 5 * _MIB
_MAX_PART = 5 * 1024 * _MIB
_MAX_PARTS = 10_000
_CHUNK = _MIB
_HEX = re.compile(r"^[0-9a-f]{64}$")
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(i?b)?\s*$", re.IGNORECASE)
_MISSING = "is missing from the blob store"
_CHANGED = "changed while it was being stored"
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "403",
}

_NO_CREDENTIALS = (
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
)
# refused connections, timeouts, resets: the endpoint is not (or no longer) answering
_UNREACHABLE = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)


def open_s3_store(uri: str) -> S3BlobStore:
    """The store for ``s3://bucket/prefix`` (the ``s3`` artifact-store factory)."""
    bucket, prefix = parse_s3_uri(uri)
    return S3BlobStore(bucket, prefix)


class S3BlobStore:
    """Blobs in ``s3://bucket/prefix``; safe for many processes and machines at once.

    ``client`` is a boto3 S3 client to use instead of one made from the default
    session (``session``, if given); ``part_size`` (bytes, at least 5 MiB) and
    ``concurrency`` (parts in flight) default to ``MODELYARD_S3_PART_SIZE`` and
    ``MODELYARD_S3_CONCURRENCY``, else 16 MiB and 8. No request is made before
    the first use; the first checks the bucket exists.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: S3Client | None = None,
        session: boto3.Session | None = None,
        part_size: int | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size if part_size is not None else self._env_part_size()
        self.concurrency = concurrency if concurrency is not None else self._env_concurrency()
        if not _MIN_PART <= self.part_size <= _MAX_PART:
            raise ArtifactStoreError(
                self.location,
                f"a part size of {self.part_size} bytes is outside S3's 5 MiB..5 GiB",
            )
        if not 1 <= self.concurrency <= 64:
            raise ArtifactStoreError(
                self.location, f"concurrency must be 1..64, not {self.concurrency}"
            )
        self._session = session
        self._client_made: S3Client | None = client
        self._checked = False
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def endpoint(self) -> str:
        """The endpoint requests go to (from boto3's configuration)."""
        return str(self._client.meta.endpoint_url)

    def __repr__(self) -> str:
        return f"S3BlobStore({self.location!r})"

    def key(self, sha256: str) -> str:
        """The object key of a blob (whether or not it is stored)."""
        if not _HEX.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        tail = f"sha256/{sha256[:2]}/{sha256}"
        return f"{self.prefix}/{tail}" if self.prefix else tail

    # -- asking ---------------------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self.stat(sha256) is not None

    def stat(self, sha256: str) -> BlobInfo | None:
        """The blob's size (one HEAD); ``None`` when it is not stored."""
        key = self.key(sha256)
        client = self._client
        try:
            with self._errors("HEAD", missing_ok=True):
                head = client.head_object(Bucket=self.bucket, Key=key)
        except _Missing:
            return None
        return BlobInfo(sha256, int(head["ContentLength"]))

    def presign(self, sha256: str, expires_s: int) -> str | None:
        """A URL that GETs the blob without credentials for ``expires_s`` seconds."""
        key = self.key(sha256)
        with self._errors("presign"):
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
            )

    # -- writing --------------------------------------------------------------------------

    def put_file(self, path: Path, *, sha256: str | None = None) -> BlobInfo:
        """Store the content of ``path`` unless the blob is there already.

        The file is hashed first (unless the caller did: ``sha256``) to name it;
        the upload hashes what it sends again, and a file that changed
        meanwhile is :class:`IntegrityError` with nothing stored.
        """
        if sha256 is None:
            from modelyard.store.blobs import hash_file

            info = hash_file(path)
        else:
            info = BlobInfo(sha256, path.stat().st_size)
        if self.stat(info.sha256) is None:
            with open(path, "rb") as fh:
                self._upload(fh.read, info.sha256, info.size, changed=_CHANGED)
        return info

    def put_files(self, files: Iterable[tuple[Path, BlobInfo]]) -> None:
        """Store many files whose hashes are known: HEADs and small uploads side by side."""
        todo = list({info.sha256: (path, info) for path, info in files}.values())
        small = [(p, i) for p, i in todo if i.size < self.part_size]
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="modelyard-s3") as pool:
            for future in [pool.submit(self.put_file, p, sha256=i.sha256) for p, i in small]:
                future.result()
        for path, info in todo:
            if info.size >= self.part_size:  # each one parallel on its own
                self.put_file(path, sha256=info.sha256)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store ``data``."""
        info = BlobInfo(hashlib.sha256(data).hexdigest(), len(data))
        if self.stat(info.sha256) is None:
            self._upload(io.BytesIO(data).read, info.sha256, info.size)
        return info

    def put_stream(
        self, read: Callable[[int], bytes], *, sha256: str, size: int | None = None
    ) -> BlobInfo:
        """Store bytes pulled from ``read`` (``b""`` at the end), visible only once they hash
        to ``sha256`` (and add up to ``size``): :class:`IntegrityError` and nothing stored
        otherwise. A blob already stored is not written again (``read`` is not called)."""
        existing = self.stat(sha256)
        if existing is not None:
            return existing
        return BlobInfo(sha256, self._upload(read, sha256, size))

    def _upload(
        self,
        read: Callable[[int], bytes],
        sha256: str,
        size: int | None,
        *,
        changed: str = "does not hash to its name",
    ) -> int:
        key = self.key(sha256)
        part_size = self.part_size
        if size is not None and size > part_size * _MAX_PARTS:
            part_size = min(_MAX_PART, math.ceil(size / _MAX_PARTS / _MIB) * _MIB)
        check = _Check(self.location, sha256, size, changed)
        parts = read_parts(read, part_size)
        first = check.add(next(parts, b""))
        if len(first) < part_size:  # the whole blob: one PUT, once it is known good
            check.done()
            with self._errors("PUT"):
                self._client.put_object(Bucket=self.bucket, Key=key, Body=first)
            return check.size
        with self._errors("CreateMultipartUpload"):
            upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)[
                "UploadId"
            ]
        try:
            sender = self._part_sender(key, upload_id)
            head = [first]
            del first  # the part generator holds it only until it is sent
            etags = send_parts(_checked_parts(head, parts, check), sender, workers=self.concurrency)
            check.done()  # before completing: a wrong digest never becomes a visible blob
            with self._errors("CompleteMultipartUpload"):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={
                        "Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]
                    },
                )
        except BaseException:
            self._abort(key, upload_id)
            raise
        return check.size

    def _part_sender(self, key: str, upload_id: str) -> Callable[[int, bytes], str]:
        def send(number: int, data: bytes) -> str:
            if number > _MAX_PARTS:
                raise ArtifactStoreError(
                    self.location,
                    f"a blob of more than {_MAX_PARTS} parts of {len(data)} bytes: "
                    f"raise {ENV_PART_SIZE}",
                )
            with self._errors("UploadPart"):
                return self._client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                )["ETag"]

        return send

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:  # the error that brought us here matters more
            logger.warning(
                "could not abort the multipart upload %s of %s/%s (the bucket's lifecycle "
                "rules will have to): %s",
                upload_id,
                self.location,
                key,
                exc,
            )

    # -- reading --------------------------------------------------------------------------

    def read_bytes(self, sha256: str) -> bytes:
        """The blob's content; :class:`IntegrityError` if it does not match its name."""
        body = self._get(self.key(sha256), sha256)["Body"]
        with self._errors("GET"), contextlib.closing(body):
            data = body.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(
                self.location, f"sha256/{sha256}", "is corrupt (its sha256 differs)"
            )
        return data

    def iter_bytes(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start..end`` (end exclusive) of a blob, unverified: for a reader who
        verifies (a client of the server). The request is made before this returns, so
        a missing blob is :class:`IntegrityError` here, not in the loop."""
        key = self.key(sha256)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range {start}..{end}")
        if end is not None and end == start:
            if self.stat(sha256) is None:
                raise IntegrityError(self.location, f"sha256/{sha256}", _MISSING)
            return iter(())
        wanted = None
        if start or end is not None:
            wanted = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            response = self._get(key, sha256, wanted)
        except _OutOfRange:
            return iter(())
        return self._chunks(response["Body"])

    def copy_to(self, sha256: str, dest: Path, *, size: int | None = None) -> None:
        """Download a blob into the new file ``dest`` in parallel ranged parts, verified
        (sha256 and size) before this returns; otherwise ``dest`` is removed and
        :class:`IntegrityError` raised."""
        key = self.key(sha256)
        if size is None:
            info = self.stat(sha256)
            if info is None:
                raise IntegrityError(self.location, f"sha256/{sha256}", _MISSING)
            size = info.size
        expected = size

        def fetch_range(start: int, end: int) -> Iterator[bytes]:
            wanted = f"bytes={start}-{end - 1}" if end > start else None
            try:
                response = self._get(key, sha256, wanted)
            except _OutOfRange:
                raise IntegrityError(
                    self.location, f"sha256/{sha256}", f"is shorter than {expected} bytes"
                ) from None
            total = _total_size(response)
            if total != expected:
                response["Body"].close()
                raise IntegrityError(
                    self.location, f"sha256/{sha256}", f"has {total} bytes, not {expected}"
                )
            yield from self._chunks(response["Body"])

        fetch_into(
            dest,
            fetch_range,
            size=size,
            sha256=sha256,
            part_size=self.part_size,
            workers=self.concurrency,
            where=self.location,
        )

    def _get(self, key: str, sha256: str, wanted: str | None = None) -> GetObjectOutputTypeDef:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if wanted is not None:
            kwargs["Range"] = wanted
        client = self._client
        try:
            with self._errors("GET", missing_ok=True):
                return client.get_object(**kwargs)
        except _Missing:
            raise IntegrityError(self.location, f"sha256/{sha256}", _MISSING) from None

    def _chunks(self, body: StreamingBody) -> Iterator[bytes]:
        with self._errors("GET"), contextlib.closing(body):
            yield from body.iter_chunks(_CHUNK)

    # -- the client and its errors ----------------------------------------------------------

    @property
    def _client(self) -> S3Client:
        client = self._client_made
        if client is not None and self._checked:
            return client
        with self._lock:
            if self._client_made is None:
                with self._errors("connect"):
                    session = self._session or boto3.session.Session()
                    self._client_made = session.client(
                        "s3",
                        config=botocore.config.Config(
                            # one connection per part in flight, and a few for HEADs
                            max_pool_connections=max(10, self.concurrency * 2 + 2),
                            # boto3 presigns with SigV2 otherwise (in us-east-1 and on
                            # custom endpoints), which AWS refuses for newer buckets
                            signature_version="s3v4",
                        ),
                    )
            client = self._client_made
            if not self._checked:
                self._check_bucket(client)
                self._checked = True
            return client

    def _check_bucket(self, client: S3Client) -> None:
        # A HEAD of a missing object and one in a missing bucket look alike (404, no
        # body): ask about the bucket once, so the second is not read as "no blob".
        try:
            client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise self._failure(f"the bucket {self.bucket!r} does not exist", client) from None
            if code not in _DENIED:  # a 403 may only mean no s3:ListBucket: carry on
                raise self._translate(exc, "HEAD bucket", client) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._translate(exc, "HEAD bucket", client) from None

    @contextlib.contextmanager
    def _errors(self, what: str, *, missing_ok: bool = False) -> Iterator[None]:
        """botocore's exceptions as :class:`ArtifactStoreError` naming bucket and endpoint."""
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            if missing_ok and code in ("404", "NoSuchKey", "NotFound"):
                raise _Missing from None
            if missing_ok and code == "InvalidRange":
                raise _OutOfRange from None
            raise self._translate(exc, what, self._client_made) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._translate(exc, what, self._client_made) from None

    def _translate(self, exc: Exception, what: str, client: Any) -> ArtifactStoreError:
        if isinstance(exc, _NO_CREDENTIALS):
            return self._failure(
                "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE)",
                client,
            )
        if isinstance(exc, _UNREACHABLE):
            return self._failure(
                f"cannot reach the S3 endpoint (set AWS_ENDPOINT_URL for a server other than "
                f"AWS): {exc}",
                client,
            )
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _code(exc)
            message = exc.response.get("Error", {}).get("Message") or ""
            if code == "NoSuchBucket":
                return self._failure(f"the bucket {self.bucket!r} does not exist", client)
            if code in _DENIED:
                return self._failure(
                    f"{what} was refused ({code}{': ' + message if message else ''}): check "
                    "the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) "
                    "and their permissions on the bucket",
                    client,
                )
            return self._failure(
                f"{what} failed: {code}{': ' + message if message else ''}", client
            )
        return self._failure(f"{what} failed: {exc}", client)

    def _failure(self, reason: str, client: Any) -> ArtifactStoreError:
        endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
        return ArtifactStoreError(self.location, reason, endpoint=endpoint)

    def _env_part_size(self) -> int:
        text = os.environ.get(ENV_PART_SIZE)
        if not text:
            return _DEFAULT_PART
        found = _SIZE.match(text)
        if not found:
            raise ArtifactStoreError(
                self.location, f"{ENV_PART_SIZE}={text!r} is not a size (16M, 64MiB, 16777216)"
            )
        scale = {"": 1, "k": 1024, "m": _MIB, "g": 1024 * _MIB}[found.group(2).lower()]
        return int(found.group(1)) * scale

    def _env_concurrency(self) -> int:
        text = os.environ.get(ENV_CONCURRENCY)
        if not text:
            return _DEFAULT_CONCURRENCY
        if not text.strip().isdigit():
            raise ArtifactStoreError(
                self.location, f"{ENV_CONCURRENCY}={text!r} is not a number of parts (1..64)"
            )
        return int(text)


class _Missing(Exception):
    pass


class _OutOfRange(Exception):
    pass


class _Check:
    """The running sha256 and size of an upload, and the verdict on them."""

    def __init__(self, location: str, sha256: str, size: int | None, changed: str) -> None:
        self.location = location
        self.sha256 = sha256
        self.expected = size
        self.changed = changed
        self.size = 0
        self._h = hashlib.sha256()

    def add(self, part: bytes) -> bytes:
        self._h.update(part)
        self.size += len(part)
        if self.expected is not None and self.size > self.expected:
            raise IntegrityError(self.location, f"sha256/{self.sha256}", "is longer than declared")
        return part

    def done(self) -> None:
        if self.expected is not None and self.size != self.expected:
            raise IntegrityError(
                self.location,
                f"sha256/{self.sha256}",
                f"has {self.size} bytes, not {self.expected}",
            )
        if self._h.hexdigest() != self.sha256:
            raise IntegrityError(self.location, f"sha256/{self.sha256}", self.changed)


def _checked_parts(head: list[bytes], rest: Iterator[bytes], check: _Check) -> Iterator[bytes]:
    yield head.pop()
    for part in rest:
        yield check.add(part)
        del part  # not held while the next part is read


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _total_size(response: GetObjectOutputTypeDef) -> int:
    content_range = response.get("ContentRange")
    if content_range:  # "bytes 0-99/1234"
        return int(str(content_range).rsplit("/", 1)[1])
    return int(response["ContentLength"])
