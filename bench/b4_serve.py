"""B4: decrypt-and-serve of a large document over loopback, against raw AES-GCM decryption
of the same bytes and nginx serving the same ciphertext file; gateway memory growth too."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench import s3
from bench.b5_small_docs import ceiling_server, init_node, person_token
from bench.common import Result
from bench.node import free_port, reset_peak_rss, rss_mib, server_process
from gateway.documents.piece_hashing import PieceHashHelpers
from gateway.documents.segment_anchor import PieceHasher, PieceVerifier
from gateway.documents.stream_aead import TAG_SIZE, StreamDecryptor, StreamEncryptor

SEGMENT = 64 * 1024
MIB = 1024 * 1024


def _chunk(n: int) -> bytes:
    return n.to_bytes(8, "big") * (MIB // 8)


async def _upload(base: str, headers: dict[str, str], size: int) -> str:
    async def body() -> AsyncIterator[bytes]:
        for n in range(size // MIB):
            yield _chunk(n)

    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        url = f"{base}/api/v1/documents?title=Large&label=SECRET//LOGISTICS"
        async with session.post(url, data=body()) as response:
            response.raise_for_status()
            return str((await response.json())["id"])


def curl_rate(url: str, headers: dict[str, str], expected: int) -> float:
    """MiB/s for one download with curl (a C client, so the client is not the limit)."""
    return curl_download(url, headers, expected)[0]


def curl_download(url: str, headers: dict[str, str], expected: int) -> tuple[float, float]:
    """MiB/s for one download with curl, and the CPU seconds curl itself spent (user and
    system) per MiB received: the client's share of the cores, whoever serves."""
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    size, seconds = int(out[0]), float(out[1])
    if size != expected:
        raise RuntimeError(f"downloaded {size} bytes, expected {expected}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return size / MIB / seconds, cpu / (size / MIB)


def sha256_rate(size: int) -> float:
    """MiB/s of SHA-256 over 64 KiB pieces on one core (the anchor's leaf hash)."""
    piece = os.urandom(SEGMENT)
    start = time.perf_counter()
    for _ in range(size // SEGMENT):
        hashlib.sha256(b"\x00" + piece).digest()
    return size / MIB / (time.perf_counter() - start)


def cpu_ceiling(client_seconds_per_mib: float, hash_rate: float, decrypt_rate: float) -> float:
    """The most MiB/s any server on this machine could serve while hashing every segment
    and decrypting it, if its work spread perfectly over every core and reading, sending,
    HTTP and Python cost nothing: the cores divided by the CPU time one MiB needs (the
    client's share measured with curl, one SHA-256 and one AES-GCM pass)."""
    cores = len(os.sched_getaffinity(0))
    per_mib = client_seconds_per_mib + 1 / hash_rate + 1 / decrypt_rate
    return cores / per_mib


def aes_gcm_rate(size: int) -> float:
    """MiB/s of raw AES-256-GCM decryption of the same amount, segmented the same way."""
    key = AESGCM.generate_key(bit_length=256)
    encryptor = StreamEncryptor(key, b"bench", SEGMENT)
    header = encryptor.header()
    sealed = bytearray()
    for n in range(size // MIB):
        sealed += encryptor.update(_chunk(n))
    sealed += encryptor.finalize()
    aead = AESGCM(key)
    step = SEGMENT + TAG_SIZE
    view = memoryview(bytes(sealed))
    nonce_prefix = header[9:16]
    segments = len(view) // step + (1 if len(view) % step else 0)
    ad = header + b"bench"
    start = time.perf_counter()
    for index in range(segments):
        last = b"\x01" if index == segments - 1 else b"\x00"
        nonce = nonce_prefix + index.to_bytes(4, "big") + last
        aead.decrypt(nonce, view[index * step : (index + 1) * step].tobytes(), ad)
    return size / MIB / (time.perf_counter() - start)


@contextlib.contextmanager
def nginx_serving(directory: Path) -> Iterator[str]:
    """nginx (Debian package) serving ``directory`` on a loopback port."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="sekisho-nginx-"))
    (work / "logs").mkdir()
    conf = work / "nginx.conf"
    conf.write_text(
        f"{'user root; ' if os.geteuid() == 0 else ''}worker_processes 1; daemon off;\n"
        f"pid {work}/nginx.pid; error_log {work}/logs/error.log;\n"
        "events { worker_connections 64; }\n"
        "http { access_log off; sendfile on; "
        f"client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work}; "
        f"uwsgi_temp_path {work}; scgi_temp_path {work}; "
        f"server {{ listen 127.0.0.1:{port}; root {directory}; }} }}\n"
    )
    process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)])
    try:
        time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def in_process_floor(size: int, directory: Path, *, helped: bool) -> float:
    """MiB/s of the serving work without HTTP: read a stored stream in 1 MiB chunks from
    disk, check every piece against its anchored leaf, decrypt (the same code the gateway
    runs, on a stream of the same size written here with a key of our own). ``helped``:
    with one hashing helper process, started before the clock starts, as the gateway has."""
    key = AESGCM.generate_key(bit_length=256)
    encryptor = StreamEncryptor(key, b"bench", SEGMENT)
    hasher = PieceHasher(SEGMENT)
    path = directory / "floor.bin"
    with open(path, "wb") as out:
        for piece in (encryptor.header(),):
            out.write(piece)
            hasher.update(piece)
        for n in range(size // MIB):
            sealed = encryptor.update(_chunk(n))
            out.write(sealed)
            hasher.update(sealed)
        sealed = encryptor.finalize()
        out.write(sealed)
        hasher.update(sealed)
    leaves = hasher.finish()
    stream_size = path.stat().st_size
    helpers = _started_helpers() if helped else None
    start = time.perf_counter()
    verifier = PieceVerifier(leaves, SEGMENT, stream_size, 0, len(leaves) - 1, helpers)
    decryptor = StreamDecryptor(key, b"bench")
    with open(path, "rb") as source:
        while chunk := source.read(MIB):
            verifier.update(chunk)
            decryptor.update(chunk)
    verifier.finish()
    decryptor.finalize()
    elapsed = time.perf_counter() - start
    verifier.release()
    if helpers is not None:
        helpers.close()
    path.unlink()
    return size / MIB / elapsed


def _started_helpers() -> PieceHashHelpers:
    """A pool whose one helper has started and is idle."""
    helpers = PieceHashHelpers(1)
    deadline = time.monotonic() + 30
    while (helper := helpers.lend()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the hashing helper did not start")
        time.sleep(0.02)
    helpers.give_back(helper)
    return helpers


def s3_rows(size: int, filesystem_rate: float) -> list[Result]:
    """The same download with the blobs in S3 (a private Ceph RGW), and memory for both ways."""
    with s3.ceph_s3() as env, tempfile.TemporaryDirectory(prefix="sekisho-b4s3-") as tmp:
        data_dir = Path(tmp) / "var"
        init_node(data_dir, env)
        headers = {"Authorization": f"Bearer {asyncio.run(person_token(data_dir))}"}
        with server_process(data_dir, env) as (base, pid):
            rss_before = rss_mib(pid)
            reset_peak_rss(pid)
            doc = asyncio.run(_upload(base, headers, size))
            upload_growth = rss_mib(pid, "VmHWM") - rss_before
            rss_before = rss_mib(pid)
            reset_peak_rss(pid)
            rate = curl_rate(f"{base}/api/v1/documents/{doc}/content", headers, size)
            download_growth = rss_mib(pid, "VmHWM") - rss_before
        raw = raw_s3_rate(env)
    growth = max(upload_growth, download_growth)
    return [
        Result(
            "B4",
            f"decrypt-and-serve {size // MIB} MiB from S3 (Ceph RGW on loopback)",
            rate,
            "MiB/s",
            {"filesystem": filesystem_rate, "raw S3 GET of the ciphertext (curl)": raw},
            "filesystem",
            ">= 0.5x the filesystem figure",
            rate >= 0.5 * filesystem_rate,
        ),
        Result(
            "B4",
            f"S3: gateway peak RSS growth (upload {upload_growth:.1f}, download "
            f"{download_growth:.1f} MiB)",
            growth,
            "MiB",
            {},
            None,
            "< 64 MiB",
            growth < 64,
        ),
    ]


def raw_s3_rate(env: dict[str, str]) -> float:
    """MiB/s of one plain GET of the bucket's largest object by curl (the store's own speed)."""
    import botocore.session

    endpoint, bucket = env["SEKISHO_BLOBS_S3_ENDPOINT"], env["SEKISHO_BLOBS_S3_BUCKET"]
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=env["SEKISHO_BLOBS_S3_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    largest = max(client.list_objects_v2(Bucket=bucket)["Contents"], key=lambda o: o["Size"])
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": largest["Key"]}, ExpiresIn=600
    )
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", "-K", "-"]
    out = subprocess.run(  # the signed URL goes in on stdin, not on the command line
        command, input=f'url = "{url}"\n', capture_output=True, text=True, check=True
    ).stdout.split()
    if int(out[0]) != largest["Size"]:
        raise RuntimeError(f"raw S3 GET read {out[0]} of {largest['Size']} bytes")
    return int(out[0]) / MIB / float(out[1])


def run(quick: bool) -> list[Result]:
    """Throughput and memory growth for one large download."""
    size = (16 if quick else 512) * MIB
    with tempfile.TemporaryDirectory(prefix="sekisho-b4-") as tmp:
        data_dir = Path(tmp) / "var"
        init_node(data_dir)
        headers = {"Authorization": f"Bearer {asyncio.run(person_token(data_dir))}"}
        with server_process(data_dir) as (base, pid):
            doc = asyncio.run(_upload(base, headers, size))
            rss_before = rss_mib(pid)
            reset_peak_rss(pid)
            ours = curl_rate(f"{base}/api/v1/documents/{doc}/content", headers, size)
            growth = rss_mib(pid, "VmHWM") - rss_before
        blob = next(
            p for p in (data_dir / "blobs").rglob("*") if p.is_file() and p.parent.name != "tmp"
        )
        served = Path(tmp) / "www"
        served.mkdir()
        os.link(blob, served / "ciphertext.bin")
        with nginx_serving(served) as nginx_base:
            nginx, client_cpu = curl_download(
                f"{nginx_base}/ciphertext.bin", {}, blob.stat().st_size
            )
        floor = in_process_floor(size, Path(tmp), helped=True)
        floor_alone = in_process_floor(size, Path(tmp), helped=False)
    with ceiling_server(size) as bare_base:  # HTTP alone: no reading, checking or decrypting
        bare = curl_rate(f"{bare_base}/bare", {}, size)
    decrypt = aes_gcm_rate(size)
    hashing = sha256_rate(size)
    ceiling = cpu_ceiling(client_cpu, hashing, decrypt)
    lower_name = "AES-GCM decrypt" if decrypt <= nginx else "nginx"
    lower = min(decrypt, nginx)
    results = [
        Result(
            "B4",
            f"decrypt-and-serve {size // MIB} MiB over loopback (curl client)",
            ours,
            "MiB/s",
            {"AES-GCM decrypt": decrypt, "nginx": nginx},
            lower_name,
            ">= 0.5x the lower limit",
            ours >= 0.5 * lower,
        ),
        Result(
            "B4",
            "the same against nginx serving the ciphertext, and the in-process floor (read, "
            "check every segment against its anchor with a hashing helper, decrypt; no HTTP)",
            ours,
            "MiB/s",
            {
                "nginx": nginx,
                "in-process floor": floor,
                "the floor on one thread, no helper": floor_alone,
                "bare aiohttp streaming from memory": bare,
            },
            "in-process floor",
            ">= 0.6x nginx and >= 0.8x the floor",
            ours >= 0.6 * nginx and ours >= 0.8 * floor,
        ),
        Result(
            "B4",
            "CPU ceiling of any verifying server here: cores / (curl's CPU per MiB + one "
            "SHA-256 and one AES-GCM pass per MiB); reading, sending and HTTP counted as free",
            ceiling,
            "MiB/s",
            {
                "nginx": nginx,
                "SHA-256, one core": hashing,
                "AES-GCM decrypt, one core": decrypt,
            },
            "nginx",
            "0.6x nginx is within reach only if this is >= 0.6x",
            ceiling >= 0.6 * nginx,
            note=f"an upper bound, not Sekisho; curl used {client_cpu * 1000:.2f} ms CPU per MiB",
        ),
        Result(
            "B4",
            "gateway peak RSS growth during the download",
            growth,
            "MiB",
            {},
            None,
            "< 64 MiB",
            growth < 64,
        ),
    ]
    if s3.available():
        results += s3_rows(size, ours)
    return results
