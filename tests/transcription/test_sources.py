"""Audio sources and result files, on the local filesystem and on a real S3-compatible server (moto over HTTP)."""
from __future__ import annotations

import dataclasses
import io
import socket
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from config.env import ConfigError, read_env
from config.settings import ENV, build_storages
from tests.transcription.s3server import closed_port, s3_server, s3_settings, s3_storage, use_s3  # noqa: F401  (fixtures)
from transcription import sources
from transcription.sources import SourceMissing, SourceRefused, SourceTooLarge, SourceUnavailable

AUDIO = b"RIFF" + bytes(range(256)) * 64  # not decoded here: only moved around
ALLOWED = "media.example.com"


@pytest.fixture
def local_storage(settings: Any, tmp_path: Path) -> Path:
    """Default storage on the local filesystem in a temporary MEDIA_ROOT, as settings build it."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = build_storages(dataclasses.replace(ENV, storage="local"))
    return tmp_path / "media"


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per storage backend."""
    request.getfixturevalue("local_storage" if request.param == "local" else "s3_storage")
    return str(request.param)


@pytest.fixture
def policy(settings: Any) -> None:
    """One allowed audio host."""
    settings.TRANSCRIPTION_ALLOWED_HOSTS = [ALLOWED]


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """The worker's scratch directory."""
    path = tmp_path / "work"
    path.mkdir()
    return path


# Uploads and fetches, both backends ---------------------------------------------------------------


def test_an_upload_comes_back_byte_for_byte(backend: str, dest: Path) -> None:
    key = sources.save_upload(io.BytesIO(AUDIO), name="../../My talk.wav")
    assert key.startswith("audio/") and key.endswith("/My_talk.wav") and ".." not in key
    path = sources.fetch(key, str(dest))
    assert Path(path).parent == dest and path.endswith(".wav")
    assert Path(path).read_bytes() == AUDIO


def test_an_upload_with_any_name_gets_a_key_the_worker_accepts(backend: str, dest: Path) -> None:
    for name in ["Café déjà vu.wav", "日本語.mp3", "..", "", "a\\b/c:d?.ogg"]:
        key = sources.save_upload(io.BytesIO(AUDIO), name=name)
        assert sources.check(key) == key
        assert Path(sources.fetch(key, str(dest))).read_bytes() == AUDIO
    assert key.endswith("/c_d.ogg") or key.endswith("/cd.ogg")


def test_two_uploads_of_one_name_get_their_own_keys(backend: str) -> None:
    first = sources.save_upload(SimpleUploadedFile("a.mp3", AUDIO), name="a.mp3")
    second = sources.save_upload(SimpleUploadedFile("a.mp3", b"other"), name="a.mp3")
    assert first != second
    with default_storage.open(first, "rb") as fh:
        assert fh.read() == AUDIO


def test_an_unseekable_upload_is_stored(backend: str, dest: Path) -> None:
    class Stream:
        def __init__(self) -> None:
            self.raw = io.BytesIO(AUDIO)

        def read(self, n: int = -1) -> bytes:
            return self.raw.read(n)

    key = sources.save_upload(Stream(), name="stream.ogg")  # type: ignore[arg-type]
    assert Path(sources.fetch(key, str(dest))).read_bytes() == AUDIO


def test_an_s3_url_in_the_configured_bucket_is_fetched(s3_storage: str, dest: Path) -> None:
    key = sources.save_upload(io.BytesIO(AUDIO), name="talk.flac")
    url = f"s3://{s3_storage}/{key}"
    assert sources.check(url) == key
    assert Path(sources.fetch(url, str(dest))).read_bytes() == AUDIO


def test_a_missing_key_is_missing(backend: str, dest: Path) -> None:
    with pytest.raises(SourceMissing) as caught:
        sources.fetch("audio/nothing/here.wav", str(dest))
    assert caught.value.extra == {"key": "audio/nothing/here.wav"}
    assert list(dest.iterdir()) == []


def test_audio_over_the_limit_is_too_large(backend: str, settings: Any, dest: Path) -> None:
    key = sources.save_upload(io.BytesIO(AUDIO), name="long.wav")
    settings.TRANSCRIPTION_MAX_BYTES = len(AUDIO) - 1
    with pytest.raises(SourceTooLarge) as caught:
        sources.fetch(key, str(dest))
    assert caught.value.extra["limit"] == len(AUDIO) - 1
    assert list(dest.iterdir()) == []  # no partial file left behind
    with pytest.raises(SourceTooLarge):
        sources.save_upload(io.BytesIO(AUDIO), name="again.wav")
    with pytest.raises(SourceTooLarge):
        sources.save_upload(io.BufferedReader(io.BytesIO(AUDIO)), name="stream.wav")  # type: ignore[arg-type]


def test_a_result_is_written_in_place_and_served(backend: str, s3_server: str) -> None:
    key = sources.save_result("WEBVTT\n\nfirst", key="transcripts/41.vtt", content_type="text/vtt")
    again = sources.save_result("WEBVTT\n\nsecond", key="transcripts/41.vtt", content_type="text/vtt")
    assert key == again == "transcripts/41.vtt"  # a retried job overwrites, it does not pile up copies
    with default_storage.open(key, "rb") as fh:
        assert fh.read() == b"WEBVTT\n\nsecond"
    url = sources.url_for(key)
    if backend == "local":
        assert url == "/media/transcripts/41.vtt"
    else:
        assert url.startswith(f"{s3_server}/") and "X-Amz-Signature=" in url
        with urllib.request.urlopen(url, timeout=5) as answer:  # the presigned GET works over HTTP
            assert answer.read() == b"WEBVTT\n\nsecond"
            assert answer.headers["Content-Type"] == "text/vtt"


def test_a_result_key_is_checked_too(backend: str) -> None:
    with pytest.raises(SourceRefused):
        sources.save_result(b"x", key="../outside.txt", content_type="text/plain")
    with pytest.raises(SourceRefused):
        sources.url_for("/etc/passwd")


# Storage that does not answer ---------------------------------------------------------------------


def test_a_closed_storage_port_is_unavailable_within_the_timeout(settings: Any, dest: Path) -> None:
    use_s3(settings, endpoint=f"http://127.0.0.1:{closed_port()}", bucket="nowhere", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as caught:
        sources.fetch("audio/a/talk.wav", str(dest))
    # 3 attempts, each refused at once, with botocore's jittered backoff (< 1 s, < 2 s) between them.
    assert time.monotonic() - started < 5
    assert isinstance(caught.value.__cause__, ConnectionError)


def test_a_storage_read_that_times_out_is_unavailable(settings: Any, dest: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        use_s3(settings, endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}", bucket="slow", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(SourceUnavailable) as caught:
            sources.fetch("audio/a/talk.wav", str(dest))
        elapsed = time.monotonic() - started
    assert "ReadTimeout" in caught.value.message
    assert elapsed < 3 * 0.3 + 3 + 1  # three reads of STORAGE_TIMEOUT, plus backoff


def test_unreachable_storage_at_upload_is_unavailable(settings: Any) -> None:
    use_s3(settings, endpoint=f"http://127.0.0.1:{closed_port()}", bucket="nowhere", timeout=0.5)
    with pytest.raises(SourceUnavailable):
        sources.save_upload(io.BytesIO(AUDIO), name="a.wav")


# Policy: check() ---------------------------------------------------------------------------------

REFUSED = [
    ("another bucket", "s3://someone-elses-bucket/audio/a.wav"),
    ("bucket with credentials", "s3://user@{bucket}/audio/a.wav"),
    ("s3 with a query", "s3://{bucket}/audio/a.wav?versionId=1"),
    ("plain http", f"http://{ALLOWED}/a.wav"),
    ("host not allowed", "https://evil.example.net/a.wav"),
    ("allowed name as a prefix", f"https://{ALLOWED}.evil.net/a.wav"),
    ("allowed name as a suffix", f"https://evil{ALLOWED}/a.wav"),
    ("credentials in the URL", f"https://user:pw@{ALLOWED}/a.wav"),
    ("another port", f"https://{ALLOWED}:8443/a.wav"),
    ("a bad port", f"https://{ALLOWED}:99999/a.wav"),
    ("localhost", "https://localhost/a.wav"),
    ("localhost with a dot", "https://localhost./a.wav"),
    ("a localhost subdomain", "https://api.localhost/a.wav"),
    ("loopback IPv4", "https://127.0.0.1/a.wav"),
    ("loopback IPv4, short form", "https://127.1/a.wav"),
    ("loopback as a number", "https://2130706433/a.wav"),
    ("loopback in hex", "https://0x7f000001/a.wav"),
    ("cloud metadata", "https://169.254.169.254/latest/meta-data/"),
    ("loopback IPv6", "https://[::1]/a.wav"),
    ("mapped IPv6", "https://[::ffff:127.0.0.1]/a.wav"),
    ("file URL", "file:///etc/passwd"),
    ("ftp URL", f"ftp://{ALLOWED}/a.wav"),
    ("gopher URL", "gopher://127.0.0.1:6379/_FLUSHALL"),
    ("javascript", "javascript:alert(1)"),
    ("data URL", "data:audio/wav;base64,UklGRg=="),
    ("key traversal", "../etc/passwd"),
    ("key traversal inside", "audio/../../settings.py"),
    ("key dot segment", "audio/./a.wav"),
    ("absolute path", "/etc/passwd"),
    ("backslash traversal", "audio\\..\\..\\x"),
    ("windows drive", "C:\\Windows\\win.ini"),
    ("empty segment", "audio//a.wav"),
    ("trailing slash", "audio/"),
    ("empty", ""),
    ("blank", "   "),
    ("a space", "audio/my talk.wav"),
    ("a newline", "audio/a.wav\nHost: x"),
    ("non-ASCII", "audio/é.wav"),
    ("too long", "audio/" + "a" * 1000),
]


@pytest.mark.parametrize("source", [s for _, s in REFUSED], ids=[i for i, _ in REFUSED])
def test_check_refuses(s3_settings: str, policy: None, dest: Path, source: str) -> None:
    source = source.replace("{bucket}", s3_settings)
    with pytest.raises(SourceRefused) as caught:
        sources.check(source)
    assert caught.value.message and caught.value.extra == {"audioUrl": [caught.value.message]}
    with pytest.raises(SourceRefused):  # the worker re-checks: a stored row cannot smuggle one in
        sources.fetch(source, str(dest))


ACCEPTED = [
    ("a storage key", "audio/0a1b/talk.wav", "audio/0a1b/talk.wav"),
    ("padded", "  audio/a.wav ", "audio/a.wav"),
    ("s3 URL", "s3://{bucket}/audio/a.wav", "audio/a.wav"),
    ("https", f"https://{ALLOWED}/talks/a.mp3?sig=1", f"https://{ALLOWED}/talks/a.mp3?sig=1"),
    ("https, normalized", f"HTTPS://Media.Example.COM.:443/a.mp3#t=10", f"https://{ALLOWED}/a.mp3"),
    ("https, no path", f"https://{ALLOWED}", f"https://{ALLOWED}/"),
]


@pytest.mark.parametrize(("source", "normalized"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_check_accepts(s3_settings: str, policy: None, source: str, normalized: str) -> None:
    assert sources.check(source.replace("{bucket}", s3_settings)) == normalized.replace("{bucket}", s3_settings)


def test_s3_urls_are_refused_when_storage_is_local(local_storage: Path) -> None:
    with pytest.raises(SourceRefused, match="only when storage is S3"):
        sources.check("s3://any-bucket/audio/a.wav")


def test_no_https_host_is_allowed_by_default(local_storage: Path) -> None:
    with pytest.raises(SourceRefused, match="not accepted"):
        sources.check(f"https://{ALLOWED}/a.wav")


# Transport: download() on a plain-HTTP loopback server (the https policy is check()'s) ----------


class Handler(BaseHTTPRequestHandler):
    """Routes of the loopback audio server."""

    def do_GET(self) -> None:  # noqa: N802
        server: Any = self.server
        port = server.server_address[1]
        routes: dict[str, Any] = {
            "/audio.wav": lambda: self.send(200, AUDIO),
            "/same-origin": lambda: self.send(302, b"", Location="/audio.wav"),
            "/other-host": lambda: self.send(302, b"", Location=f"http://localhost:{port}/audio.wav"),
            "/other-port": lambda: self.send(301, b"", Location=f"http://127.0.0.1:{closed_port()}/audio.wav"),
            "/to-https": lambda: self.send(307, b"", Location=f"https://127.0.0.1:{port}/audio.wav"),
            "/loop": lambda: self.send(302, b"", Location="/loop"),
            "/gone": lambda: self.send(404, b"no"),
            "/forbidden": lambda: self.send(403, b"no"),
            "/busy": lambda: self.send(503, b"later"),
            "/big": lambda: self.send(200, AUDIO * 4),
            "/big-chunked": self.chunked,
            "/slow": self.slow,
            "/stall": self.stall,
        }
        routes.get(self.path, lambda: self.send(404, b""))()

    def send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def chunked(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(8):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(AUDIO), AUDIO))
        self.wfile.write(b"0\r\n\r\n")

    def slow(self) -> None:
        time.sleep(2)  # headers later than the timeout
        self.send(200, AUDIO)

    def stall(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(AUDIO)))
        self.end_headers()
        self.wfile.write(AUDIO[:100])
        self.wfile.flush()
        time.sleep(2)  # then the body stops

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class QuietServer(ThreadingHTTPServer):
    """The slow and stalling routes outlive clients that time out on purpose: their broken pipes are expected."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    """A plain-HTTP audio server on 127.0.0.1 and a free port."""
    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def download(url: str, *, timeout: float = 2.0, max_bytes: int = 10 * len(AUDIO)) -> bytes:
    """Run the transport into memory."""
    out = io.BytesIO()
    written = sources.download(url, out, timeout=timeout, max_bytes=max_bytes)
    assert written == len(out.getvalue())
    return out.getvalue()


def test_the_transport_streams_a_file(http_server: str) -> None:
    assert download(f"{http_server}/audio.wav") == AUDIO


def test_a_redirect_within_the_origin_is_followed(http_server: str) -> None:
    assert download(f"{http_server}/same-origin") == AUDIO


@pytest.mark.parametrize("path", ["/other-host", "/other-port", "/to-https"])
def test_a_redirect_to_another_origin_is_refused(http_server: str, path: str) -> None:
    with pytest.raises(SourceRefused, match="redirects to another host") as caught:
        download(f"{http_server}{path}")
    assert "location" in caught.value.extra


def test_a_redirect_loop_is_refused(http_server: str) -> None:
    with pytest.raises(SourceRefused, match="redirects more than"):
        download(f"{http_server}/loop")


@pytest.mark.parametrize(("path", "error"), [("/gone", SourceMissing), ("/forbidden", SourceMissing), ("/busy", SourceUnavailable)])
def test_http_errors_are_classified(http_server: str, path: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        download(f"{http_server}{path}")


def test_a_declared_length_over_the_limit_is_refused_before_reading(http_server: str) -> None:
    with pytest.raises(SourceTooLarge) as caught:
        download(f"{http_server}/big", max_bytes=len(AUDIO))
    assert caught.value.extra["size"] == 4 * len(AUDIO)


def test_a_chunked_body_is_cut_off_at_the_limit(http_server: str) -> None:
    assert download(f"{http_server}/big-chunked", max_bytes=8 * len(AUDIO)) == AUDIO * 8
    with pytest.raises(SourceTooLarge):
        download(f"{http_server}/big-chunked", max_bytes=3 * len(AUDIO))


@pytest.mark.parametrize("path", ["/slow", "/stall"])
def test_a_slow_server_times_out_as_unavailable(http_server: str, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="TimeoutError|timed out"):
        download(f"{http_server}{path}", timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_a_closed_port_is_unavailable(http_server: str) -> None:
    with pytest.raises(SourceUnavailable, match="ConnectionRefused"):
        download(f"http://127.0.0.1:{closed_port()}/audio.wav")


# Settings ----------------------------------------------------------------------------------------

BASE = {"DEBUG": "true"}


def test_storage_defaults_to_the_local_filesystem() -> None:
    env = read_env(BASE)
    assert (env.storage, env.media_root.name, env.storage_timeout) == ("local", "media", 30.0)
    assert env.transcription_allowed_hosts == [] and env.transcription_max_bytes == 500 * 1024**2
    assert build_storages(env)["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_a_bucket_means_s3_with_the_timeouts_of_settings() -> None:
    env = read_env({**BASE, "S3_BUCKET": "audio-bucket", "S3_ENDPOINT_URL": "http://s3.internal:9000/", "STORAGE_TIMEOUT": "7",
                    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "very-secret"})
    assert "very-secret" not in repr(env) and "AKIDEXAMPLE" not in repr(env)
    default = build_storages(env)["default"]
    options = default["OPTIONS"]
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    assert (options["bucket_name"], options["endpoint_url"], options["access_key"]) == ("audio-bucket", "http://s3.internal:9000", "AKIDEXAMPLE")
    config = options["client_config"]
    assert (config.connect_timeout, config.read_timeout, config.retries["max_attempts"]) == (7.0, 7.0, 3)


def test_without_keys_boto3_finds_its_own_credentials() -> None:
    options = build_storages(read_env({**BASE, "S3_BUCKET": "audio-bucket"}))["default"]["OPTIONS"]
    assert "access_key" not in options and options["client_config"].s3 is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STORAGE": "s3"}, "S3_BUCKET"),
        ({"STORAGE": "ftp"}, "STORAGE"),
        ({"S3_BUCKET": "Bad_Bucket"}, "S3_BUCKET"),
        ({"S3_BUCKET": "b-1", "S3_ENDPOINT_URL": "s3.internal:9000"}, "S3_ENDPOINT_URL"),
        ({"S3_BUCKET": "b-1", "AWS_ACCESS_KEY_ID": "AKID"}, "AWS_SECRET_ACCESS_KEY"),
        ({"STORAGE_TIMEOUT": "0"}, "STORAGE_TIMEOUT"),
        ({"TRANSCRIPTION_ALLOWED_HOSTS": "media.example.com,10.0.0.1"}, "TRANSCRIPTION_ALLOWED_HOSTS"),
        ({"TRANSCRIPTION_ALLOWED_HOSTS": "https://media.example.com"}, "TRANSCRIPTION_ALLOWED_HOSTS"),
        ({"TRANSCRIPTION_ALLOWED_HOSTS": "localhost"}, "TRANSCRIPTION_ALLOWED_HOSTS"),
        ({"TRANSCRIPTION_ALLOWED_HOSTS": "2130706433"}, "TRANSCRIPTION_ALLOWED_HOSTS"),
        ({"TRANSCRIPTION_MAX_BYTES": "lots"}, "TRANSCRIPTION_MAX_BYTES"),
    ],
)
def test_bad_storage_settings_stop_the_process(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        read_env({**BASE, **env})


def test_sizes_and_hosts_are_parsed() -> None:
    env = read_env({**BASE, "TRANSCRIPTION_MAX_BYTES": "2G", "TRANSCRIPTION_ALLOWED_HOSTS": "Media.Example.com, cdn.example.org",
                    "TRANSCRIPTION_MODEL_DIR": "models"})
    assert env.transcription_max_bytes == 2 * 1024**3
    assert env.transcription_allowed_hosts == ["media.example.com", "cdn.example.org"]
    assert env.transcription_model_dir.is_absolute() and env.transcription_model_dir.name == "models"
