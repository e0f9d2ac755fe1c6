"""Photos: JPEG, PNG and iPhones' HEIC accepted, re-encoded without their metadata (EXIF location
above all), a thumbnail made at upload, kept through the photo store (a local folder, or an
S3-compatible object store: here a real one, moto's server, started by the test)."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from PIL import Image
from pillow_heif import register_heif_opener
from sqlalchemy import func, select

from linli_issues.adapters.photo_store import PhotoMissing, S3Store, photo_store_from
from linli_issues.adapters.tables import photos
from linli_issues.config import load_photo_storage_config
from linli_kit.testing.infra import stable_port
from linli_kit.testing.waiting import eventually

register_heif_opener()
pytestmark = pytest.mark.integration

MAKE, MODEL = "Apple", "iPhone 15 Pro"
GPS_IFD = 0x8825


def _exif() -> Image.Exif:
    """What a phone writes: the camera and where the picture was taken (a resident's home)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = MAKE, MODEL
    exif[GPS_IFD] = {1: "N", 2: (38.0, 6.0, 12.5), 3: "E", 4: (106.0, 20.0, 7.25)}
    return exif


def _picture(fmt: str, size: tuple[int, int] = (1200, 800)) -> bytes:
    image = Image.new("RGB", size, (200, 60, 40))
    out = io.BytesIO()
    image.save(out, fmt, exif=_exif().tobytes(), **({"quality": 60} if fmt != "PNG" else {}))
    return out.getvalue()


def _upload(client, url: str, content: bytes, headers: dict, name: str = "IMG_0001.HEIC"):
    return client.post(url, data={"photo": (io.BytesIO(content), name)}, headers=headers,
                       content_type="multipart/form-data")  # fmt: skip


def _no_metadata(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    assert not dict(image.getexif()), "EXIF kept"
    assert MAKE.encode() not in content and MODEL.encode() not in content
    assert b"Exif\x00\x00" not in content and b"GPS" not in content
    return image


@pytest.mark.parametrize(("fmt", "stored_as"), [("JPEG", "JPEG"), ("HEIF", "JPEG"), ("PNG", "PNG")])
def test_a_photo_is_stored_re_encoded_without_its_location_with_a_thumbnail(
    client, tokens, report, app, fmt, stored_as
):
    issue, reporter = report()
    url = f"/{issue['id']}/photos"
    sent = _picture(fmt)
    assert Image.open(io.BytesIO(sent)).getexif()[GPS_IFD]  # the phone's file says where it was taken
    uploaded = _upload(client, url, sent, reporter)
    assert uploaded.status_code == 201, uploaded.get_json()
    photo = uploaded.get_json()
    assert (photo["content_type"], photo["width"], photo["height"]) == (f"image/{stored_as.lower()}", 1200, 800)
    assert photo["thumbnail_url"] == f"{issue['id']}/photos/{photo['id']}/thumbnail"

    served = client.get(f"{url}/{photo['id']}", headers=tokens.resident())
    assert served.status_code == 200 and served.mimetype == photo["content_type"]
    assert len(served.data) == photo["size"]
    assert _no_metadata(served.data).format == stored_as

    thumbnail = client.get(f"{url}/{photo['id']}/thumbnail", headers=tokens.resident())
    assert thumbnail.status_code == 200 and thumbnail.mimetype == "image/jpeg"
    small = _no_metadata(thumbnail.data)
    assert (small.format, small.size) == ("JPEG", (320, 213))
    # What lies on disk is what is served: the phone's bytes are nowhere.
    folder = app.extensions["linli.settings"].data_dir / "photos"
    stored = sorted(p.name for p in folder.iterdir())
    assert stored == sorted([f"{photo['id']}.{'png' if stored_as == 'PNG' else 'jpg'}", f"{photo['id']}.thumb.jpg"])
    for path in folder.iterdir():
        assert b"GPS" not in path.read_bytes() and MODEL.encode() not in path.read_bytes()
    # Outside the issue's readers: neither the photo nor its thumbnail.
    outsider = tokens.resident(community_id=tokens.d.community_b1)
    assert client.get(f"{url}/{photo['id']}/thumbnail", headers=outsider).status_code == 404


def test_bad_photos_are_refused_naming_the_problem_and_nothing_is_stored(client, report, app, database):
    issue, reporter = report()
    url = f"/{issue['id']}/photos"
    heic = _picture("HEIF")
    jpeg = _picture("JPEG")
    for content, why in [
        (b"", "the file is empty"),
        (b"<html>not an image</html>", "only JPEG, PNG and HEIC/HEIF images are accepted"),
        (b"GIF89a" + b"\x00" * 50, "only JPEG, PNG and HEIC/HEIF images are accepted"),
        (heic[: len(heic) // 2], "not a readable HEIC/HEIF image"),
        (heic[:40] + b"\x00" * 400, "not a readable HEIC/HEIF image"),
        (jpeg[:200], "not a readable JPEG image"),
        (b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024), "larger than 5 MB"),
    ]:
        refused = _upload(client, url, content, reporter)
        assert refused.status_code == 422, (why, refused.get_json())
        assert refused.get_json()["error"]["fields"]["photo"] == [why]
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(photos)) == 0
    folder: Path = app.extensions["linli.settings"].data_dir / "photos"
    assert not folder.exists() or not list(folder.iterdir())


# --- S3-compatible storage ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server, a real HTTP server speaking the S3 protocol, on a port of our own."""
    port = stable_port()
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{endpoint}/moto-api/", timeout=1).status_code < 500
        except requests.ConnectionError:
            return process.poll() is not None  # exited: stop waiting, the assertion below says so

    try:
        eventually(answers, timeout=60, what="moto_server to answer")
        assert process.poll() is None, "moto_server exited"
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_settings(monkeypatch, s3_endpoint):
    bucket = f"linli-photos-{uuid.uuid4().hex[:8]}"
    for name, value in {
        "PHOTO_STORAGE": "s3",
        "PHOTO_S3_ENDPOINT_URL": s3_endpoint,
        "PHOTO_S3_BUCKET": bucket,
        "PHOTO_S3_ACCESS_KEY_ID": "linli-test",
        "PHOTO_S3_SECRET_ACCESS_KEY": "linli-test-secret",
        "PHOTO_S3_REGION": "cn-northwest-1",
        "PHOTO_S3_PREFIX": "lingwu/photos/",
    }.items():
        monkeypatch.setenv(name, value)
    store = photo_store_from(load_photo_storage_config(), Path("/nonexistent"))
    assert isinstance(store, S3Store)
    store.client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "cn-northwest-1"})
    return store


def test_the_s3_store_keeps_reads_and_deletes_objects(s3_settings):
    store = s3_settings
    store.put("a.jpg", b"\xff\xd8 bytes", "image/jpeg")
    assert store.get("a.jpg") == b"\xff\xd8 bytes"
    head = store.client.head_object(Bucket=store.bucket, Key="lingwu/photos/a.jpg")
    assert head["ContentType"] == "image/jpeg"
    store.delete("a.jpg")
    store.delete("a.jpg")  # already gone: fine
    with pytest.raises(PhotoMissing):
        store.get("a.jpg")
    with pytest.raises(ValueError):
        store.put("../escape.jpg", b"x", "image/jpeg")


def test_photos_go_to_s3_when_the_settings_say_so(env, clock, s3_settings, tokens, directory, valid_report, app):
    from linli_issues.entrypoints.web import create_app

    s3_app = create_app(clock=clock)  # built with the PHOTO_S3_* settings above
    try:
        client = s3_app.test_client()
        reporter = tokens.resident()
        issue = client.post("/", json=valid_report(), headers=reporter).get_json()
        photo = _upload(client, f"/{issue['id']}/photos", _picture("HEIF"), reporter).get_json()
        store = s3_settings
        keys = sorted(o["Key"] for o in store.client.list_objects_v2(Bucket=store.bucket)["Contents"])
        assert keys == [f"lingwu/photos/{photo['id']}.jpg", f"lingwu/photos/{photo['id']}.thumb.jpg"]
        served = client.get(f"/{issue['id']}/photos/{photo['id']}/thumbnail", headers=tokens.staff())
        assert Image.open(io.BytesIO(served.data)).size == (320, 213)
        _no_metadata(store.get(f"{photo['id']}.jpg"))
        assert not (s3_app.extensions["linli.settings"].data_dir / "photos").exists()
    finally:
        s3_app.extensions["linli.database"].dispose()


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"PHOTO_STORAGE": "ftp"}, "PHOTO_STORAGE must be one of local, s3"),
        ({"PHOTO_STORAGE": "s3"}, "PHOTO_STORAGE=s3 needs PHOTO_S3_BUCKET"),
        ({"PHOTO_S3_ENDPOINT_URL": "minio:9000"}, "PHOTO_S3_ENDPOINT_URL must be an http(s) URL"),
        ({"PHOTO_S3_ACCESS_KEY_ID": "k"}, "set PHOTO_S3_ACCESS_KEY_ID and PHOTO_S3_SECRET_ACCESS_KEY together"),
        ({"PHOTO_MAX_MB": "many"}, "PHOTO_MAX_MB must be a number"),
        ({"PHOTO_THUMBNAIL_PX": "8"}, "PHOTO_THUMBNAIL_PX between 32 and 2048"),
    ],
    ids=["unknown-storage", "s3-without-bucket", "endpoint-not-a-url", "key-without-secret", "size", "thumbnail"],
)
def test_photo_settings_that_cannot_work_stop_the_process_naming_the_variable(monkeypatch, settings, complaint):
    from linli_kit.config import ConfigError

    for name in ("PHOTO_STORAGE", "PHOTO_S3_BUCKET", "PHOTO_S3_ENDPOINT_URL", "PHOTO_S3_ACCESS_KEY_ID",
                 "PHOTO_S3_SECRET_ACCESS_KEY", "PHOTO_MAX_MB", "PHOTO_THUMBNAIL_PX"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        load_photo_storage_config()


def test_photos_kept_as_sent_before_are_re_encoded_by_the_command(client, tokens, report, app, database, capsys):
    """A photo of before migration 0010, its EXIF location and all, and one that no longer decodes."""
    from sqlalchemy import insert

    from linli_issues.definition import definition

    issue, reporter = report()
    folder: Path = app.extensions["linli.settings"].data_dir / "photos"
    folder.mkdir(parents=True)
    old, broken = str(uuid.uuid4()), str(uuid.uuid4())
    sent = _picture("JPEG")
    (folder / f"{old}.jpg").write_bytes(sent)
    (folder / f"{broken}.jpg").write_bytes(sent[:300])
    with database.transaction() as s:
        for photo_id, size in ((old, len(sent)), (broken, 300)):
            s.execute(insert(photos).values(id=photo_id, issue_id=issue["id"], content_type="image/jpeg", size=size,
                                            file_name=f"{photo_id}.jpg", uploaded_by=str(uuid.uuid4()),
                                            created_at=datetime.now(UTC)))  # fmt: skip
    command = definition.commands["reencode-photos"]
    assert command(definition.settings(), database, []) == 1  # one could not be decoded
    assert broken in capsys.readouterr().err
    listed = {p["id"]: p for p in client.get(f"/{issue['id']}/photos", headers=reporter).get_json()}
    assert (listed[old]["width"], listed[old]["height"]) == (1200, 800)
    served = client.get(f"/{issue['id']}/photos/{old}", headers=reporter)
    _no_metadata(served.data)
    assert len(served.data) == listed[old]["size"] and served.data == (folder / f"{old}.jpg").read_bytes()
    thumbnail = client.get(f"/{issue['id']}/photos/{old}/thumbnail", headers=reporter)
    assert Image.open(io.BytesIO(thumbnail.data)).size == (320, 213)
    # The broken one is left as it was (its thumbnail: the photo itself); a second run does nothing more.
    assert (folder / f"{broken}.jpg").read_bytes() == sent[:300] and listed[broken]["width"] is None
    assert client.get(f"/{issue['id']}/photos/{broken}/thumbnail", headers=reporter).data == sent[:300]
    before = (folder / f"{old}.jpg").stat().st_mtime_ns
    assert command(definition.settings(), database, []) == 1
    assert (folder / f"{old}.jpg").stat().st_mtime_ns == before
