"""The part of MONAI Label's datastore that the tasks use, in memory (for tests without a server)."""

from __future__ import annotations


class FakeDatastore:
    """Images by id, final labels (file and info) by image id, and per-image info."""

    def __init__(self, images: dict[str, str], labels: dict[str, tuple[str, dict]] | None = None) -> None:
        self.images = images
        self.labels = labels or {}
        self.info: dict[str, dict] = {i: {} for i in images}

    def get_image_uri(self, image_id):
        return self.images.get(image_id, "")

    def get_image_info(self, image_id):
        return dict(self.info[image_id])

    def update_image_info(self, image_id, info):
        self.info[image_id].update(info)

    def get_labeled_images(self, *args):
        return [i for i in self.images if i in self.labels]

    def get_unlabeled_images(self, *args):
        return [i for i in self.images if i not in self.labels]

    def get_label_by_image_id(self, image_id, tag):
        return image_id if image_id in self.labels else ""

    def get_label_uri(self, label_id, tag):
        return self.labels[label_id][0]

    def get_label_info(self, label_id, tag):
        return dict(self.labels[label_id][1])
