"""A real MONAI Label server on 127.0.0.1, started with the documented command, driven over HTTP.

The studies folder holds the tiny ISIC demo's training images, two of them with labels already; the
bundles folder a cross-teaching bundle trained for one epoch, an OCT classifier and a byolmed2d bundle
without weights. The test lists the models, infers with each, saves a label, trains one epoch from the
datastore, asks for the next image and sends bad requests. Every wait is bounded.
"""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("monailabel", reason="MONAI Label is installed by `bash scripts/setup.sh --label`")
requests = pytest.importorskip("requests")

from label_helpers import copy_bundle, served_bundles  # noqa: E402
from label_server import label_server, wait_for_training  # noqa: E402

pytestmark = pytest.mark.monailabel


@pytest.fixture(scope="module")
def server(tmp_path_factory, isic_bundle, isic_data):
    """``monailabel start_server --app apps/monai_ssl ...`` on a free port; yields ``(url, paths)``; stopped after."""
    root = tmp_path_factory.mktemp("label_server")
    bundles = served_bundles(root / "bundles", isic_bundle)
    copy_bundle("byolmed2d", bundles, {})  # no weights: listed as not loaded

    studies = root / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    truth = isic_data / "ISIC-2017_Training_Part1_GroundTruth"
    for image in sorted((isic_data / "ISIC-2017_Training_Data").glob("ISIC_*.jpg")):
        shutil.copy(image, studies / image.name)
    for stem in ("ISIC_0000000", "ISIC_0000001"):  # labeled before the server starts (0/255 masks)
        shutil.copy(truth / f"{stem}_segmentation.png", studies / "labels" / "final" / f"{stem}.png")
    scan = root / "oct_scan.jpeg"
    Image.fromarray((np.random.default_rng(0).random((48, 40)) * 255).astype(np.uint8)).save(scan)
    broken = root / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")

    with label_server(root, studies, bundles) as url:
        yield url, {"studies": studies, "bundles": bundles, "scan": scan, "broken": broken, "truth": truth, "log": root / "server.log"}


def test_info_lists_models_labels_and_the_bundle_without_weights(server):
    url, _ = server
    info = requests.get(f"{url}/info/", timeout=10).json()
    assert sorted(info["models"]) == ["isic_cross_teaching", "oct_byol_pseudolabel"]
    assert info["models"]["isic_cross_teaching"]["labels"] == {"lesion": 1}
    assert info["models"]["isic_cross_teaching"]["type"] == "segmentation"
    assert info["models"]["oct_byol_pseudolabel"]["type"] == "classification"
    assert info["models"]["oct_byol_pseudolabel"]["class_names"] == ["CNV", "DME", "DRUSEN", "NORMAL"]
    assert "no trained weights" in info["not_loaded"]["byolmed2d"]
    assert sorted(info["trainers"]) == ["isic_cross_teaching", "oct_byol_pseudolabel"]
    assert {"disagreement", "least_confidence"} <= set(info["strategies"])


def test_infer_segmentation_returns_a_mask_of_the_image_size(server):
    url, paths = server
    answer = requests.post(f"{url}/infer/isic_cross_teaching", params={"image": "ISIC_0000003", "output": "image"}, timeout=120)
    assert answer.status_code == 200, answer.text
    mask = np.asarray(Image.open(io.BytesIO(answer.content)))
    assert mask.shape == np.asarray(Image.open(paths["studies"] / "ISIC_0000003.jpg")).shape[:2]
    assert set(np.unique(mask)) <= {0, 1}


def test_infer_classification_returns_class_and_probabilities(server):
    url, paths = server
    with open(paths["scan"], "rb") as scan:  # an image that is not in the datastore is uploaded with the request
        answer = requests.post(f"{url}/infer/oct_byol_pseudolabel", params={"output": "json"},
                               files={"file": ("oct_scan.jpeg", scan)}, timeout=120)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["class"] in result["probabilities"]
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_bad_requests_get_4xx_and_the_server_keeps_serving(server):
    url, paths = server
    unknown_model = requests.post(f"{url}/infer/nope", params={"image": "ISIC_0000003"}, timeout=30)
    assert unknown_model.status_code == 404 and "unknown model 'nope'" in unknown_model.json()["detail"]
    not_loaded = requests.post(f"{url}/infer/byolmed2d", params={"image": "ISIC_0000003"}, timeout=30)
    assert not_loaded.status_code == 404 and "no trained weights" in not_loaded.json()["detail"]
    unknown_image = requests.post(f"{url}/infer/isic_cross_teaching", params={"image": "ISIC_9999999"}, timeout=30)
    assert unknown_image.status_code == 404 and "unknown image" in unknown_image.json()["detail"]
    unreadable = requests.post(f"{url}/infer/isic_cross_teaching", files={"file": ("broken.jpg", paths["broken"].read_bytes())},
                               timeout=60)
    assert unreadable.status_code == 422 and "not a readable image" in unreadable.json()["detail"]
    no_strategy = requests.post(f"{url}/activelearning/nope", json={}, timeout=30)
    assert no_strategy.status_code == 404 and "unknown strategy 'nope'" in no_strategy.json()["detail"]
    wrong_model = requests.post(f"{url}/activelearning/least_confidence", json={"model": "isic_cross_teaching"}, timeout=30)
    assert wrong_model.status_code == 404 and "oct_byol_pseudolabel" in wrong_model.json()["detail"]
    assert requests.get(f"{url}/info/", timeout=10).ok


def test_save_label_train_from_the_datastore_and_propose_the_next_image(server):
    url, paths = server
    # a label drawn in the tool: label index 1 = lesion (MONAI Label's convention), not 0/255
    mask = (np.asarray(Image.open(paths["truth"] / "ISIC_0000002_segmentation.png")) > 127).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    saved = requests.put(f"{url}/datastore/label", params={"image": "ISIC_0000002", "tag": "final"},
                         files={"label": ("ISIC_0000002.png", buffer.getvalue(), "image/png")}, timeout=30)
    assert saved.status_code == 200, saved.text
    assert (paths["studies"] / "labels" / "final" / "ISIC_0000002.png").is_file()

    model = paths["bundles"] / "isic_cross_teaching" / "models" / "model.pt"
    before = model.stat().st_mtime_ns
    started = requests.post(f"{url}/train/isic_cross_teaching", json={"max_epochs": 1, "device": "cpu"}, timeout=30)
    assert started.status_code == 200, started.text
    wait_for_training(url, "RUNNING")  # MONAI Label refuses a second training once the first one's process runs
    again = requests.post(f"{url}/train/isic_cross_teaching", json={"max_epochs": 1}, timeout=30)
    assert again.status_code == 429  # one training at a time
    status = wait_for_training(url, "DONE", "ERROR")
    details = "\n".join(status.get("details", []))  # MONAI Label keeps the task's last 20 output lines
    assert status["status"] == "DONE", details[-3000:]
    assert 'Result: {"model_file": ' in details
    assert "Epoch[1] Complete" in details  # the bundle's progress reaches MONAI Label's train status
    log = paths["log"].read_text()
    assert "training on 2 labeled + 5 unlabeled image(s), validating on 1, for 1 epoch(s)" in log
    assert "Key metric: val_iou best value" in log  # the bundle's validation chose the model
    assert model.stat().st_mtime_ns > before  # the best model of this run is served now
    assert (paths["bundles"] / "isic_cross_teaching" / "runs" / "monailabel").is_dir()  # TensorBoard

    proposal = requests.post(f"{url}/activelearning/disagreement", json={}, timeout=180)
    assert proposal.status_code == 200, proposal.text
    chosen = proposal.json()
    unlabeled = {f"ISIC_000000{i}" for i in range(3, 8)}
    assert chosen["id"] in unlabeled and chosen["strategy"] == "disagreement"
    assert chosen["scored"] == len(unlabeled) and 0.0 <= chosen["score"] <= 1.0
    info = json.loads((paths["studies"] / "datastore_v2.json").read_text())
    scored = info["objects"][chosen["id"]]["image"]["info"]["monai_ssl_scores"]
    assert scored["disagreement/isic_cross_teaching"]["score"] == pytest.approx(chosen["score"])

    least = requests.post(f"{url}/activelearning/least_confidence", json={"model": "oct_byol_pseudolabel"}, timeout=180)
    assert least.status_code == 200, least.text
    assert least.json()["id"] in unlabeled and least.json()["strategy"] == "least_confidence"
