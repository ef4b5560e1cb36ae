"""The guarded MONAI Label datastore (:class:`monai_ssl.label.datastore.GuardedDatastore`).

Unsafe ids and tags found on disk or in an old ``datastore_v2.json`` never become entries (they are
listed under ``skipped``); uploads are checked, never overwrite an image unless asked, and archive the
replaced image with its labels; staging files stay in ``<studies>/.monai_ssl/``; unknown ids and tags
are 404s and malformed values 422s.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("monailabel", reason="MONAI Label is installed by `bash scripts/setup.sh --label`")

from monailabel.datastore.local import LocalDatastore  # noqa: E402

from monai_ssl.label.datastore import PRIVATE_DIR, GuardedDatastore  # noqa: E402
from monai_ssl.label.errors import Conflict, NotFound, Unprocessable  # noqa: E402

UNSAFE_FILES = {"$x.png": "config syntax", "@a.png": "config syntax", "%b.png": "config syntax", "..c.png": "'..'"}


def _png(path: Path, seed: int = 0, size: tuple[int, int] = (12, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)).save(path)
    return path


def _jpg(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(path)
    return path


def _store(studies: Path) -> GuardedDatastore:
    return GuardedDatastore(str(studies), extensions=["*.png", "*.jpg"])


def _files(root: Path, exclude: Path | None = None) -> dict[str, bytes]:
    """Every file under ``root`` (outside ``exclude``) with its content."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and (exclude is None or exclude not in p.parents)
    }


@pytest.fixture
def studies(tmp_path) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    return folder


@pytest.fixture
def sources(tmp_path) -> Path:
    """Upload files outside the studies folder."""
    folder = tmp_path / "uploads"
    _png(folder / "a.png", seed=1)
    _png(folder / "b.png", seed=2)
    _png(folder / "mask.png", seed=3)
    _jpg(folder / "mask.jpg", seed=4)
    return folder


def _status_code(excinfo) -> int:
    return excinfo.value.status_code


# ---------------------------------------------------------------- unsafe names found on disk
def test_unsafe_files_in_the_studies_folder_are_skipped(studies):
    for name in UNSAFE_FILES:
        _png(studies / name)
    _png(studies / "ok.png")
    _png(studies / "labels" / "$tag" / "ok.png")
    store = _store(studies)

    assert store.list_images() == ["ok"]
    skipped = store.status()["skipped"]
    for name, reason in UNSAFE_FILES.items():
        assert reason in skipped[name]
        assert "rename the file" in skipped[name]
        assert (studies / name).exists()  # left on disk untouched
    tag_keys = [key for key in skipped if "$tag" in key]
    assert tag_keys == [str(Path("labels") / "$tag")]
    assert "its labels are not used" in skipped[tag_keys[0]]
    assert "$tag" not in store.get_labels_by_image_id("ok")
    assert store.get_labels_by_image_id("ok") == {}
    assert (studies / "labels" / "$tag" / "ok.png").exists()
    saved = json.loads((studies / "datastore_v2.json").read_text())
    assert list(saved["objects"]) == ["ok"]


def test_skipped_files_are_listed_again_after_a_refresh_until_removed(studies):
    _png(studies / "$x.png")
    _png(studies / "..c.png")
    _png(studies / "ok.png")
    store = _store(studies)
    store.refresh()
    assert set(store.status()["skipped"]) == {"$x.png", "..c.png"}
    (studies / "$x.png").unlink()
    store.refresh()
    assert set(store.status()["skipped"]) == {"..c.png"}
    assert store.list_images() == ["ok"]


def test_unsafe_label_file_in_a_safe_tag_is_skipped(studies):
    _png(studies / "ok.png")
    _png(studies / "labels" / "final" / "ok.png")
    _png(studies / "labels" / "final" / "$x.png")
    store = _store(studies)
    assert store.get_labels_by_image_id("ok") == {"final": "ok"}
    assert str(Path("labels") / "final" / "$x.png") in store.status()["skipped"]


# ---------------------------------------------------------------- unsafe names in an old datastore_v2.json
def test_unsafe_entries_of_an_old_datastore_file_are_ignored(tmp_path, studies):
    _png(studies / "ok.png")
    _store(studies)
    config = studies / "datastore_v2.json"
    data = json.loads(config.read_text())
    data["objects"]["../evil"] = copy.deepcopy(data["objects"]["ok"])
    data["objects"]["ok"]["labels"]["$t"] = {"ext": ".png", "info": {"name": "ok.png"}}
    config.write_text(json.dumps(data))
    _png(tmp_path / "evil.png")  # the file that "../evil" points to exists (outside the studies folder)
    _png(studies / "labels" / "$t" / "ok.png")

    # without the guard, MONAI Label's datastore serves the entry
    plain_copy = tmp_path / "plain"
    shutil.copytree(studies, plain_copy)
    assert "../evil" in LocalDatastore(str(plain_copy), extensions=["*.png", "*.jpg"]).list_images()

    store = _store(studies)
    assert store.list_images() == ["ok"]
    assert store.get_image_uri("../evil") == ""
    assert "$t" not in store.get_labels_by_image_id("ok")
    skipped = store.status()["skipped"]
    assert "datastore_v2.json: ../evil" in skipped
    assert "entry ignored" in skipped["datastore_v2.json: ../evil"]
    assert "datastore_v2.json: ok [$t]" in skipped
    store.refresh()  # a refresh keeps what was found in the file
    assert "datastore_v2.json: ../evil" in store.status()["skipped"]
    assert "../evil" not in store.list_images()


# ---------------------------------------------------------------- add_image
def test_unsafe_image_id_is_refused(studies, sources):
    store = _store(studies)
    for bad in ("$x", "../evil", "@a", "a/b"):
        with pytest.raises(Unprocessable) as caught:
            store.add_image(bad, str(sources / "a.png"), {})
        assert _status_code(caught) == 422
    assert store.list_images() == []
    assert sorted(p.name for p in studies.glob("*.png")) == []


def test_add_image_copies_a_file_from_outside(studies, sources):
    store = _store(studies)
    assert store.add_image("case_1", str(sources / "a.png"), {"source": "test"}) == "case_1"
    assert (studies / "case_1.png").read_bytes() == (sources / "a.png").read_bytes()
    assert (sources / "a.png").exists()  # copied, not moved
    assert store.list_images() == ["case_1"]
    assert store.get_image_info("case_1")["source"] == "test"
    assert store.add_image("", str(sources / "b.png"), {}) == "b"  # no id: the file's name


def test_existing_id_is_a_conflict_and_replace_archives_the_old_image_and_labels(tmp_path, studies, sources):
    outside_before = _files(tmp_path, exclude=studies)
    store = _store(studies)
    store.add_image("ok", str(sources / "a.png"), {})
    store.save_label("ok", str(sources / "mask.png"), "final", {})
    old_image = (studies / "ok.png").read_bytes()

    with pytest.raises(Conflict) as caught:
        store.add_image("ok", str(sources / "b.png"), {})
    assert _status_code(caught) == 409
    assert (studies / "ok.png").read_bytes() == old_image
    assert store.get_labels_by_image_id("ok") == {"final": "ok"}

    assert store.add_image("ok", str(sources / "b.png"), {}, replace=True) == "ok"
    assert (studies / "ok.png").read_bytes() == (sources / "b.png").read_bytes()
    archives = list((studies / PRIVATE_DIR / "replaced" / "ok").iterdir())
    assert len(archives) == 1
    assert (archives[0] / "ok.png").read_bytes() == old_image
    assert (archives[0] / "labels" / "final" / "ok.png").read_bytes() == (sources / "mask.png").read_bytes()
    assert not (studies / "labels" / "final" / "ok.png").exists()
    assert store.get_labels_by_image_id("ok") == {}
    store.refresh()
    assert store.get_labels_by_image_id("ok") == {}
    assert _store(studies).get_labels_by_image_id("ok") == {}  # the archive is not read back as labels
    assert _store(studies).list_images() == ["ok"]

    assert _files(tmp_path, exclude=studies) == outside_before  # nothing written outside the studies folder


def test_replacing_twice_keeps_both_archives(studies, sources):
    store = _store(studies)
    store.add_image("ok", str(sources / "a.png"), {})
    store.add_image("ok", str(sources / "b.png"), {}, replace=True)
    store.add_image("ok", str(sources / "a.png"), {}, replace=True)
    archives = sorted((studies / PRIVATE_DIR / "replaced" / "ok").iterdir())
    assert len(archives) == 2
    assert sorted((a / "ok.png").read_bytes() for a in archives) == sorted(
        [(sources / "a.png").read_bytes(), (sources / "b.png").read_bytes()])


# ---------------------------------------------------------------- staging files
def test_staged_upload_is_moved_in_and_unused_ones_are_deleted(studies):
    store = _store(studies)
    uploads = (studies / PRIVATE_DIR / "uploads").resolve()
    with store.staging_file(".png") as staged:
        assert staged.resolve().parent == uploads
        assert staged.suffix == ".png"
        assert not staged.exists()
        _png(staged, seed=7)
        content = staged.read_bytes()
        store.add_image("new", str(staged), {})
        assert not staged.exists()  # moved, not copied
    assert (studies / "new.png").read_bytes() == content
    assert store.list_images() == ["new"]

    with store.staging_file(".png") as unused:
        _png(unused)
        assert unused.exists()
    assert not unused.exists()

    with pytest.raises(RuntimeError):
        with store.staging_file(".jpg") as failed:
            failed.write_bytes(b"partial upload")
            raise RuntimeError("upload interrupted")
    assert not failed.exists()
    assert list(uploads.iterdir()) == []
    store.refresh()
    assert store.list_images() == ["new"]


def test_staging_files_are_distinct(studies):
    store = _store(studies)
    with store.staging_file(".png") as first, store.staging_file(".png") as second:
        assert first != second


# ---------------------------------------------------------------- save_label
def test_label_of_an_unknown_image_is_not_found(studies, sources):
    store = _store(studies)
    with pytest.raises(NotFound) as caught:
        store.save_label("unknown", str(sources / "mask.png"), "final", {})
    assert _status_code(caught) == 404
    with pytest.raises(NotFound):
        store.save_label("$x", str(sources / "mask.png"), "final", {})


def test_unsafe_label_tag_is_refused_and_nothing_is_written(tmp_path, studies, sources):
    store = _store(studies)
    store.add_image("ok", str(sources / "a.png"), {})
    before = _files(tmp_path)
    folders_before = sorted(p for p in tmp_path.rglob("*") if p.is_dir())
    for tag in ("../x", "$x", "a/b"):
        with pytest.raises(Unprocessable) as caught:
            store.save_label("ok", str(sources / "mask.png"), tag, {})
        assert _status_code(caught) == 422
    assert _files(tmp_path) == before
    assert sorted(p for p in tmp_path.rglob("*") if p.is_dir()) == folders_before
    assert store.get_labels_by_image_id("ok") == {}


def test_a_new_label_extension_replaces_the_old_file(studies, sources):
    store = _store(studies)
    store.add_image("ok", str(sources / "a.png"), {})
    store.save_label("ok", str(sources / "mask.png"), "final", {"client": "x"})
    assert sorted(p.name for p in (studies / "labels" / "final").iterdir()) == ["ok.png"]
    store.save_label("ok", str(sources / "mask.jpg"), "final", {})
    assert sorted(p.name for p in (studies / "labels" / "final").iterdir()) == ["ok.jpg"]
    assert store.get_label_uri("ok", "final").endswith("ok.jpg")
    assert (studies / "labels" / "final" / "ok.jpg").read_bytes() == (sources / "mask.jpg").read_bytes()
    store.refresh()
    assert store.get_labels_by_image_id("ok") == {"final": "ok"}


def test_label_under_a_custom_tag(studies, sources):
    store = _store(studies)
    store.add_image("ok", str(sources / "a.png"), {})
    store.save_label("ok", str(sources / "mask.png"), "my_tag", {})
    assert (studies / "labels" / "my_tag" / "ok.png").read_bytes() == (sources / "mask.png").read_bytes()
    assert store.get_labels_by_image_id("ok") == {"my_tag": "ok"}
    assert store.label_tag(None) == "final"


# ---------------------------------------------------------------- removals and updates
def test_unknown_images_and_labels_are_not_found(studies, sources):
    store = _store(studies)
    store.add_image("ok", str(sources / "a.png"), {})
    for call in (
        lambda: store.remove_image("nope"),
        lambda: store.remove_image("$x"),
        lambda: store.remove_label("ok", "final"),
        lambda: store.remove_label("nope", "final"),
        lambda: store.update_image_info("nope", {}),
        lambda: store.update_label_info("ok", "final", {}),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert _status_code(caught) == 404
    assert store.list_images() == ["ok"]


def test_remove_and_update_known_entries(studies, sources):
    store = _store(studies)
    store.add_image("ok", str(sources / "a.png"), {})
    store.save_label("ok", str(sources / "mask.png"), "final", {})
    store.update_image_info("ok", {"reviewed": True})
    assert store.get_image_info("ok")["reviewed"] is True
    store.update_label_info("ok", "final", {"score": 0.5})
    assert store.get_label_info("ok", "final")["score"] == 0.5
    store.remove_label("ok", "final")
    assert not (studies / "labels" / "final" / "ok.png").exists()
    assert store.get_labels_by_image_id("ok") == {}
    store.remove_image("ok")
    assert not (studies / "ok.png").exists()
    assert store.list_images() == []


# ---------------------------------------------------------------- image_extension
def test_image_extension(studies):
    store = _store(studies)
    assert store.image_extension("a.JPG") == ".jpg"
    assert store.image_extension("scan.png") == ".png"
    for bad in ("noext", "", None, "a.png.txt", "a.gif"):
        with pytest.raises(Unprocessable) as caught:
            store.image_extension(bad)
        assert _status_code(caught) == 422


def test_image_extension_prefers_the_longest(tmp_path):
    store = GuardedDatastore(str(tmp_path / "volumes"), extensions=["*.nii", "*.nii.gz"])
    assert store.image_extension("CT.NII.GZ") == ".nii.gz"
    assert store.image_extension("ct.nii") == ".nii"


def test_folders_named_in_an_old_datastore_file_are_ignored(tmp_path, studies, sources):
    _png(studies / "ok.png")
    _store(studies)
    config = json.loads((studies / "datastore_v2.json").read_text())
    config.update(labels_dir="../outside", images_dir="..")
    (studies / "datastore_v2.json").write_text(json.dumps(config))
    store = _store(studies)
    assert store.list_images() == ["ok"]
    store.save_label("ok", str(sources / "mask.png"), "final", {})
    assert (studies / "labels" / "final" / "ok.png").is_file()
    assert not (tmp_path / "outside").exists()
    assert {"datastore_v2.json: labels_dir", "datastore_v2.json: images_dir"} <= set(store.status()["skipped"])


def test_files_put_in_by_hand_are_archived_when_an_image_is_replaced(studies, sources):
    store = _store(studies)
    _png(studies / "new.png", seed=7)  # added by hand after start, no refresh yet
    _png(studies / "labels" / "final" / "new.png", seed=8)
    with pytest.raises(Conflict):
        store.add_image("new", str(sources / "a.png"), {})
    store.add_image("new", str(sources / "a.png"), {}, replace=True)
    archived = {p.name for p in (studies / PRIVATE_DIR / "replaced" / "new").rglob("*.png")}
    assert archived == {"new.png"} and len(list((studies / PRIVATE_DIR / "replaced" / "new").rglob("*.png"))) == 2
    store.refresh()
    assert store.get_labels_by_image_id("new") == {}  # the old mask is not paired with the new image
    assert (studies / "new.png").read_bytes() == (sources / "a.png").read_bytes()


def test_a_label_left_without_its_image_is_archived_by_a_new_upload(studies, sources):
    store = _store(studies)
    _png(studies / "labels" / "final" / "gone.png", seed=9)  # its image was deleted by hand
    store.add_image("gone", str(sources / "a.png"), {})
    store.refresh()
    assert store.get_labels_by_image_id("gone") == {}
    assert list((studies / PRIVATE_DIR / "replaced" / "gone").rglob("gone.png"))
