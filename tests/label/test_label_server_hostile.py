"""Hostile and careless requests against a real MONAI Label server of ``apps/monai_ssl`` on 127.0.0.1.

The studies folder holds the tiny ISIC demo images, three final labels, one label of the wrong size,
and files a careless or hostile user dropped in: names that are MONAI config syntax (``$...``, ``@``,
``%``), an unsafe label-tag folder, a truncated JPEG and an image above the server's pixel limit
(``--conf max_megapixels 0.5``). The server runs with its own temp folder and working folder, so that
every file it writes can be accounted for. Each request's status code is checked, and ``/info/``
after it; the last test checks that nothing appeared outside the studies and model folders, that no
injected code ran, and that the images and final labels are byte-identical except where a request was
meant to change them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("monailabel", reason="MONAI Label is installed by `bash scripts/setup.sh --label`")
requests = pytest.importorskip("requests")

from label_helpers import served_bundles  # noqa: E402
from label_server import label_server, wait_for_training  # noqa: E402

pytestmark = pytest.mark.monailabel

MARKERS = ("marker_dropped", "marker_uploaded", "marker_label", "marker_infer")
DROPPED = {  # file names a user or an attacker put into the studies folder
    "$open('marker_dropped','w').write('x').jpg": "ISIC_0000004",
    "@labeled.jpg": "ISIC_0000005",
    "%train.jpg": "ISIC_0000007",
}
# what the requests below are meant to change (new images, new final labels)
INTENDED = {"new_case.jpg", "replaced_case.jpg", "labels/final/ISIC_0000006.png", "labels/final/new_case.json"}


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _snapshot(studies: Path) -> dict[str, str]:
    """sha256 of every image and final label of the studies folder."""
    files = [p for p in studies.iterdir() if p.is_file() and p.suffix in (".jpg", ".png")]
    files += [p for p in (studies / "labels" / "final").iterdir() if p.is_file()]
    return {str(p.relative_to(studies)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, isic_bundle, isic_data):
    """The server and its folders; ``before`` holds the listings and hashes taken before any request."""
    root = tmp_path_factory.mktemp("hostile")
    bundles = served_bundles(root / "bundles", isic_bundle)
    inference = bundles / "isic_cross_teaching" / "configs" / "inference.json"
    config = json.loads(inference.read_text())
    config["working_size"] = 512  # inference (and scoring) at a larger size: a model works seconds on each request
    inference.write_text(json.dumps(config, indent=4))

    studies = root / "studies"
    final = studies / "labels" / "final"
    final.mkdir(parents=True)
    images = isic_data / "ISIC-2017_Training_Data"
    truth = isic_data / "ISIC-2017_Training_Part1_GroundTruth"
    for image in sorted(images.glob("ISIC_*.jpg")):
        shutil.copy(image, studies / image.name)
    for stem in ("ISIC_0000000", "ISIC_0000001", "ISIC_0000002"):
        shutil.copy(truth / f"{stem}_segmentation.png", final / f"{stem}.png")
    (final / "ISIC_0000003.png").write_bytes(_png(np.zeros((10, 10), np.uint8)))  # wrong size, dropped in by hand
    for name, source in DROPPED.items():
        shutil.copy(images / f"{source}.jpg", studies / name)
    (studies / "labels" / "$tag").mkdir()
    shutil.copy(truth / "ISIC_0000005_segmentation.png", studies / "labels" / "$tag" / "ISIC_0000005.png")
    jpeg = (images / "ISIC_0000004.jpg").read_bytes()
    (studies / "truncated_case.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (studies / "big_case.png").write_bytes(_png(np.full((1000, 1000), 128, np.uint8)))  # 1 MP > 0.5

    shutil.copy(images / "ISIC_0000004.jpg", root / "outside.jpg")  # an image outside the studies folder

    cwd, tmp = root / "cwd", root / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    before = {"studies": _snapshot(studies)}
    env = {"TMPDIR": str(tmp), "MONAI_LABEL_AUTO_UPDATE_SCORING": "false"}
    with label_server(root, studies, bundles, conf={"max_megapixels": "0.5"}, env=env, cwd=cwd) as url:
        before.update(root=set(os.listdir(root)), tmp=_listing(tmp))
        yield {"url": url, "root": root, "studies": studies, "bundles": bundles, "images": images, "truth": truth,
               "tmp": tmp, "cwd": cwd, "before": before}


def _answer(url: str, response: requests.Response, status: int, *words: str) -> dict:
    """Check the status code and message words of a request, and that ``/info/`` answers after it; returns the JSON."""
    assert response.status_code == status, f"{response.status_code} (expected {status}): {response.text[:500]}"
    answer = response.json()
    for word in words:
        assert word in str(answer.get("detail", "")), f"{word!r} not in {answer!r}"
    assert requests.get(f"{url}/info/", timeout=5).ok
    return answer


def test_unsafe_names_in_the_studies_folder_are_skipped_with_the_reason(hostile):
    url = hostile["url"]
    status = requests.get(f"{url}/datastore/", params={"output": "stats"}, timeout=10).json()
    skipped = status["skipped"]
    for name in DROPPED:
        assert name in skipped, skipped
    assert "config syntax" in skipped["$open('marker_dropped','w').write('x').jpg"]
    assert any("$tag" in k and "label tag" in v for k, v in skipped.items())
    listed = requests.get(f"{url}/datastore/", params={"output": "all"}, timeout=10).json()["objects"]
    assert not [i for i in listed if i[0] in "$@%"]
    assert "ISIC_0000004" in listed and "truncated_case" in listed
    assert "$tag" not in listed["ISIC_0000005"]["labels"]  # the unsafe tag's label is not used
    info = requests.get(f"{url}/info/", timeout=5).json()
    assert info["datastore"]["skipped"] == skipped


def test_uploads_refuse_unsafe_ids_existing_images_and_bad_files(hostile):
    url, images = hostile["url"], hostile["images"]
    jpeg = (images / "ISIC_0000006.jpg").read_bytes()

    def upload(image_id, content=jpeg, filename="case.jpg", **params):
        return requests.put(f"{url}/datastore/image", params={"image": image_id, **params},
                            files={"file": (filename, content)}, timeout=30)

    _answer(url, upload("$open('marker_uploaded','w').write('x')"), 422, "config syntax")
    _answer(url, upload("@labeled"), 422, "config syntax")
    _answer(url, upload("%train"), 422, "config syntax")
    _answer(url, upload("../x"), 422, "path separator")
    _answer(url, upload("..x"), 422, "'..'")
    _answer(url, upload("ok_id", filename="noextension"), 422, "must end with one of")
    _answer(url, upload("ISIC_0000000"), 409, "exists", "replace=true")
    _answer(url, upload("broken_case", content=b"\xff\xd8\xff\xe0 not a jpeg"), 422, "not a readable image")
    _answer(url, upload("truncated_upload", content=jpeg[: len(jpeg) // 2]), 422, "not a readable image")
    _answer(url, upload("empty_case", content=b""), 422, "empty")
    _answer(url, upload("big_upload", content=_png(np.zeros((900, 900), np.uint8)), filename="big.png"), 413, "megapixels")
    bad_params = requests.put(f"{url}/datastore/image", params={"image": "params_case2"},
                              files={"file": ("case.jpg", jpeg)}, data={"params": "{not json"}, timeout=30)
    _answer(url, bad_params, 422, "not valid JSON")
    ok = _answer(url, upload("new_case"), 200)
    assert ok["image"] == "new_case" and (hostile["studies"] / "new_case.jpg").read_bytes() == jpeg


def test_replacing_an_image_archives_its_labels_in_the_same_step(hostile):
    url, images, truth, studies = hostile["url"], hostile["images"], hostile["truth"], hostile["studies"]
    first = (images / "ISIC_0000000.jpg").read_bytes()
    second = (images / "ISIC_0000001.jpg").read_bytes()
    _answer(url, requests.put(f"{url}/datastore/image", params={"image": "replaced_case"},
                              files={"file": ("a.jpg", first)}, timeout=30), 200)
    mask = (truth / "ISIC_0000000_segmentation.png").read_bytes()
    _answer(url, requests.put(f"{url}/datastore/label", params={"image": "replaced_case", "tag": "final"},
                              files={"label": ("m.png", mask)}, timeout=30), 200)
    assert (studies / "labels" / "final" / "replaced_case.png").exists()
    _answer(url, requests.put(f"{url}/datastore/image", params={"image": "replaced_case"},
                              files={"file": ("b.jpg", second)}, timeout=30), 409)
    answer = _answer(url, requests.put(f"{url}/datastore/image", params={"image": "replaced_case", "replace": "true"},
                                       files={"file": ("b.jpg", second)}, timeout=30), 200)
    assert answer["replaced"] is True
    assert (studies / "replaced_case.jpg").read_bytes() == second
    assert not (studies / "labels" / "final" / "replaced_case.png").exists()  # the old mask is not paired with the new image
    archived = list((studies / ".monai_ssl" / "replaced" / "replaced_case").rglob("*"))
    assert {p.name for p in archived if p.is_file()} == {"replaced_case.jpg", "replaced_case.png"}
    listed = requests.get(f"{url}/datastore/", params={"output": "all"}, timeout=10).json()["objects"]
    assert listed["replaced_case"]["labels"] == {}


def test_labels_are_checked_before_anything_is_stored(hostile):
    url, truth, studies = hostile["url"], hostile["truth"], hostile["studies"]
    mask = (truth / "ISIC_0000006_segmentation.png").read_bytes()

    def label(image, content, filename="m.png", tag="final", **data):
        return requests.put(f"{url}/datastore/label", params={"image": image, "tag": tag},
                            files={"label": (filename, content)}, data=data, timeout=30)

    _answer(url, label("ISIC_9999999", mask), 404, "unknown image")
    _answer(url, label("../ISIC_0000006", mask), 404, "unknown image")
    _answer(url, label("ISIC_0000006", mask, tag="../../x"), 422, "label tag")
    _answer(url, label("ISIC_0000006", mask, tag="$x"), 422, "label tag")
    _answer(url, label("ISIC_0000006", _png(np.ones((100, 100), np.uint8))), 422, "the label is 100x100")
    _answer(url, label("ISIC_0000006", b"hello", filename="m.txt"), 422, "not a class")
    _answer(url, label("ISIC_0000006", b"", filename="m.png"), 422, "empty")
    _answer(url, label("ISIC_0000006", b"not an image at all", filename="m.png"), 422, "not a readable image")
    _answer(url, label("ISIC_0000006", mask, params="{oops"), 422, "not valid JSON")
    _answer(url, label("ISIC_0000006", b"{}", filename="c.json", params='{"class": "GLAUCOMA"}'), 422, "not a class")
    assert not (studies / "labels" / "final" / "ISIC_0000006.png").exists()  # nothing stored by the refusals
    _answer(url, label("ISIC_0000006", mask), 200)
    _answer(url, label("new_case", b"{}", filename="c.json", params='{"class": "cnv"}'), 200)
    info = requests.get(f"{url}/datastore/label/info", params={"label": "new_case", "tag": "final"}, timeout=10).json()
    assert info["class"] == "CNV"


def test_infer_takes_datastore_ids_only(hostile):
    url, studies = hostile["url"], hostile["studies"]
    outside = hostile["root"] / "outside.jpg"
    details = []
    for image in ("/etc/passwd", "/etc/nonexistent", str(outside), "../outside", "../../etc/passwd", "ISIC_9999999"):
        answer = requests.post(f"{url}/infer/isic_cross_teaching", params={"image": image}, timeout=60)
        _answer(url, answer, 404, "unknown image")
        assert "passwd" not in answer.text and "outside" not in answer.text
        details.append(answer.json()["detail"])
    assert details[0] == details[1]  # an existing and a missing path get the same answer: no oracle
    infer = f"{url}/infer/isic_cross_teaching"
    _answer(url, requests.post(infer, params={"image": "ISIC_0000004"}, data={"params": '{"save_label": true, "label_tag": "final"}'},
                               timeout=60), 422, "never saved as the 'final' label")
    _answer(url, requests.post(infer, params={"image": "ISIC_0000004"}, data={"params": '{"save_label": true, "label_tag": "../../x"}'},
                               timeout=60), 422, "label tag")
    _answer(url, requests.post(infer, params={"image": "ISIC_0000004"}, data={"params": '{"save_label": "false"}'},
                               timeout=60), 422, "JSON boolean")
    _answer(url, requests.post(infer, params={"image": "ISIC_0000004"}, data={"params": "{bad"}, timeout=60), 422, "not valid JSON")
    _answer(url, requests.post(infer, timeout=60), 422, "give the image")
    _answer(url, requests.post(infer, params={"image": "big_case"}, timeout=60), 413, "megapixels")
    _answer(url, requests.post(infer, params={"image": "truncated_case"}, timeout=60), 422, "cannot process")
    _answer(url, requests.post(f"{url}/infer/$x", params={"image": "ISIC_0000004"}, timeout=60), 404, "unknown model")
    _answer(url, requests.post(infer, params={"image": "ISIC_0000004", "session_id": "../x"}, timeout=60), 422, "sessions")
    _answer(url, requests.post(infer, params={"image": "ISIC_0000004", "output": "dicom_seg"}, timeout=60), 422, "DICOMweb")
    saved = requests.post(infer, params={"image": "ISIC_0000004", "output": "image"},
                          data={"params": '{"save_label": true}'}, timeout=60)
    assert saved.status_code == 200, saved.text
    assert (studies / "labels" / "original" / "ISIC_0000004.png").exists()  # a prediction goes to 'original'
    assert not (studies / "labels" / "final" / "ISIC_0000004.png").exists()


def test_bad_requests_get_4xx(hostile):
    url = hostile["url"]
    _answer(url, requests.delete(f"{url}/datastore/image", params={"id": "ISIC_9999999"}, timeout=10), 404, "unknown image")
    _answer(url, requests.delete(f"{url}/datastore/image", params={"id": "../studies"}, timeout=10), 404, "unknown image")
    _answer(url, requests.delete(f"{url}/datastore/label", params={"id": "ISIC_0000004", "tag": "final"}, timeout=10), 404, "no 'final' label")
    _answer(url, requests.post(f"{url}/train/nope", json={}, timeout=10), 404, "unknown trainer")
    _answer(url, requests.post(f"{url}/scoring/nope", json={}, timeout=10), 404, "unknown scoring method")
    train = f"{url}/train/isic_cross_teaching"
    _answer(url, requests.post(train, json={"pretrained": "false"}, timeout=10), 422, "pretrained must be a JSON boolean")
    _answer(url, requests.post(train, json={"max_epochs": "1"}, timeout=10), 422, "max_epochs must be a JSON integer")
    _answer(url, requests.post(train, json={"max_epochs": 0}, timeout=10), 422, "max_epochs must be between 1")
    _answer(url, requests.post(train, json={"val_split": 1.5}, timeout=10), 422, "val_split")
    _answer(url, requests.post(train, json={"device": "$x"}, timeout=10), 422, "device")
    _answer(url, requests.post(train, json={"bundle_path": "/tmp"}, timeout=10), 422, "unknown key")
    _answer(url, requests.post(f"{url}/batch/infer/isic_cross_teaching", json={"label_tag": "final", "save_label": True},
                               timeout=10), 422, "never saved as the 'final' label")
    _answer(url, requests.post(f"{url}/activelearning/nope", json={}, timeout=10), 404, "unknown strategy")
    _answer(url, requests.put(f"{url}/datastore/image/info", params={"image": "ISIC_0000004"}, data={"info": "{x"},
                              timeout=10), 422, "info is not valid JSON")
    _answer(url, requests.put(f"{url}/datastore/image/info", params={"image": "../x"}, data={"info": "{}"}, timeout=10),
            404, "unknown image")
    _answer(url, requests.put(f"{url}/datastore/label/info", params={"label": "ISIC_0000004", "tag": "final"},
                              data={"info": "{}"}, timeout=10), 404, "no 'final' label")
    assert requests.get(f"{url}/train/", timeout=10).status_code == 404  # none of these started a training


def test_training_leaves_out_unusable_files_and_runs_no_injected_code(hostile):
    url, bundles = hostile["url"], hostile["bundles"]
    answer = requests.post(f"{url}/train/isic_cross_teaching", json={"max_epochs": 1, "pretrained": True}, timeout=30)
    assert answer.status_code == 200, answer.text
    status = wait_for_training(url)
    details = "\n".join(status.get("details", []))
    assert status["status"] == "DONE", details
    summary = [line for line in status["details"] if "left out" in line and "unusable file(s)" in line]
    assert summary, details  # the last lines, which MONAI Label shows as the status, name what was left out
    for name, why in (("truncated_case.jpg", "not a readable image"), ("big_case.png", "megapixels"),
                      ("ISIC_0000003.jpg", "the label is 10x10")):
        assert name in summary[-1] and why in summary[-1], summary[-1]
    datalist = json.loads((bundles / "isic_cross_teaching" / "models" / "monailabel-datalist.json").read_text())
    ids = {item["id"] for items in datalist.values() for item in items}
    assert "ISIC_0000006" in ids and not {i for i in ids if i[0] in "$@%"}
    assert not ids & {"truncated_case", "big_case", "ISIC_0000003"}
    for marker in MARKERS:
        assert not list(hostile["root"].rglob(marker))


def test_info_answers_within_a_second_while_a_model_works(hostile):
    url = hostile["url"]
    done: dict[str, float] = {}

    def propose():
        answer = requests.post(f"{url}/activelearning/disagreement", json={}, timeout=300)
        done["status"], done["answer"], done["at"] = answer.status_code, answer.json(), time.monotonic()

    worker = threading.Thread(target=propose)
    started = time.monotonic()
    worker.start()
    latencies, answered = [], []
    while worker.is_alive():
        start = time.monotonic()
        assert requests.get(f"{url}/info/", timeout=5).ok
        latencies.append(time.monotonic() - start)
        answered.append(time.monotonic())
        time.sleep(0.05)
    worker.join()
    assert done["status"] == 200
    assert done["answer"]["skipped"] == 2  # the truncated JPEG and the image above the pixel limit are not scored
    assert done["at"] - started > 1.5, "the proposal was too quick to show whether the server stays responsive"
    assert max(latencies) < 1.0, latencies
    assert any(t < done["at"] for t in answered)  # /info/ answered while the proposal was being computed


def test_nothing_written_outside_and_no_annotation_changed(hostile):
    time.sleep(1)  # the server removes its infer results in background tasks after answering
    root, studies = hostile["root"], hostile["studies"]
    before = hostile["before"]
    assert set(os.listdir(root)) - before["root"] <= {"sessions"}, set(os.listdir(root)) - before["root"]
    assert _listing(hostile["tmp"]) == before["tmp"]
    assert os.listdir(hostile["cwd"]) == []
    for marker in MARKERS:
        assert not list(root.rglob(marker))
    after = _snapshot(studies)
    for name, digest in before["studies"].items():
        if name not in INTENDED:
            assert after.get(name) == digest, f"{name} changed or disappeared"
    assert set(after) - set(before["studies"]) <= INTENDED, set(after) - set(before["studies"])
